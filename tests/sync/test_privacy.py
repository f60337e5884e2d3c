"""Erasure removes a person everywhere and keeps them out; export and retention."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select
from sqlmodel import Session

from connectors.base import Page
from connectors.records import EngagementEvent, EventKind, Order, OrderLine, Profile
from sync import tables
from sync.ingest import IngestPolicy, write_page
from sync.ledger import PushLedger
from sync.privacy import erasure_key, export, forget, purge, write_private
from sync.store import row_counts, session_scope

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _seed(engine: Engine, key: bytes, email: str = "Erase.Me@example.com") -> IngestPolicy:
    policy = IngestPolicy(raw_retention=timedelta(days=7), now=NOW, erasure_key=key)
    order = Order(
        source="shop",
        vendor_id="o1",
        email=email,
        ordered_at=NOW - timedelta(days=3),
        updated_at=NOW,
        currency="EUR",
        total=10.0,
        lines=(OrderLine(vendor_id="l1", quantity=1, unit_price=10.0),),
        raw={"id": "o1"},
    )
    with session_scope(engine) as session:
        write_page(
            session,
            "kl",
            "profiles",
            Page([Profile(source="kl", vendor_id="K1", email=email, updated_at=NOW)], {}),
            policy,
        )
        write_page(
            session,
            "kl",
            "profiles",
            Page([Profile(source="kl", vendor_id="K2", email="keep@example.com", updated_at=NOW)], {}),
            policy,
        )
        write_page(session, "shop", "orders", Page([order], {}), policy)
        event = EngagementEvent(
            source="kl", vendor_id="e1", email=email, kind=EventKind.OPENED, occurred_at=NOW
        )
        write_page(session, "kl", "events", Page([event], {}), policy)
        pid = session.execute(
            select(tables.Profile.id).where(tables.Profile.email == email.lower())
        ).scalar_one()
        session.add(
            tables.Score(
                profile_id=pid, output="churn_risk", model_version="v", value_num=0.5, model_kind="x"
            )
        )
        PushLedger(session, "kl").confirm({pid: {"espd_x": 1}}, NOW)
    return policy


def test_forget_removes_the_person_from_every_table_and_a_stale_page_cannot_bring_them_back(
    store_engine: Engine, tmp_path: Path
) -> None:
    key = erasure_key(tmp_path / "state")
    policy = _seed(store_engine, key)
    deleted = forget(store_engine, key, "erase.me@EXAMPLE.com ", reason="customers/redact")
    assert deleted["orders"] == 1 and deleted["order_lines"] == 1 and deleted["events"] == 1
    assert deleted["scores"] == 1 and deleted["push_ledger"] == 1 and deleted["profiles"] == 1
    counts = row_counts(store_engine)
    assert counts["profiles"] == 1 and counts["identities"] == 1  # only keep@example.com is left
    assert counts["orders"] == counts["order_lines"] == counts["events"] == counts["scores"] == 0

    stale = Page(
        [Profile(source="kl", vendor_id="K1", email="erase.me@example.com", updated_at=NOW)], {"w": 9}
    )
    with session_scope(store_engine) as session:
        written = write_page(session, "kl", "profiles", stale, policy)
    assert (written.written, written.erased) == (0, 1)
    with Session(store_engine) as session:
        erasure = session.execute(select(tables.Erasure)).scalar_one()
        emails = set(session.execute(select(tables.Profile.email)).scalars())
    assert "erase.me@example.com" not in emails
    assert "erase" not in erasure.email_hash and erasure.reason == "customers/redact"


def test_erasure_key_is_private_and_stable(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert erasure_key(state) == erasure_key(state)
    assert stat.S_IMODE((state / "erasure.key").stat().st_mode) == 0o600


def test_export_gathers_everything_held_about_one_person(store_engine: Engine, tmp_path: Path) -> None:
    _seed(store_engine, erasure_key(tmp_path / "state"))
    document = export(store_engine, "erase.me@example.com")
    assert document["found"] is True
    assert [o["vendor_id"] for o in document["orders"]] == ["o1"]
    assert len(document["order_lines"]) == 1 and len(document["events"]) == 1
    assert {i["source"] for i in document["identities"]} == {"kl"}
    assert document["scores"][0]["value_num"] == 0.5
    assert export(store_engine, "nobody@example.com") == {"email": "nobody@example.com", "found": False}


def test_purge_drops_raw_json_past_retention_only(store_engine: Engine, tmp_path: Path) -> None:
    _seed(store_engine, erasure_key(tmp_path / "state"))
    assert purge(store_engine, now=NOW + timedelta(days=1)) == {"identities": 0, "orders": 0}
    purged = purge(store_engine, now=NOW + timedelta(days=8))
    assert purged["orders"] == 1 and purged["identities"] == 2
    with Session(store_engine) as session:
        order = session.execute(select(tables.Order)).scalar_one()
    assert order.raw is None and order.total == 10.0


def test_exports_are_private_even_over_an_existing_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o644)
    write_private(path, '{"found": true}')
    assert path.read_text(encoding="utf-8") == '{"found": true}'
    assert path.stat().st_mode & 0o777 == 0o600
