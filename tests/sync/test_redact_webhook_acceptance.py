"""Issue 9's webhook acceptance end to end: a signed `customers/redact` over loopback erases the person
from every table, a bad signature changes nothing, and a stale page pulled later cannot bring them back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from connectors.base import Page
from connectors.records import Profile
from simulators.shopify.webhooks import send_compliance_webhooks
from sync import tables
from sync.health import HealthServer, HealthState
from sync.ingest import IngestPolicy, write_page
from sync.metrics import Metrics
from sync.privacy import erasure_key
from sync.store import row_counts, session_scope
from sync.webhooks import ShopifyComplianceWebhook
from tests.sync.test_privacy import NOW, _seed

SECRET = "shpss_acceptance_secret"
ERASED = "erase.me@example.com"
PER_PERSON = (tables.Identity, tables.Order, tables.Event, tables.Score, tables.PushLedger)


@pytest.fixture
def served(store_engine: Engine, tmp_path: Path) -> Iterator[tuple[str, IngestPolicy]]:
    state = tmp_path / "state"
    key = erasure_key(state)
    policy = _seed(store_engine, key)  # the pull policy, erasure key included
    webhook = ShopifyComplianceWebhook("shop", [SECRET.encode()], store_engine, key, state)
    server = HealthServer(state=HealthState(), metrics=Metrics(), store_ping=lambda: None, port=0)
    server.add_route("/webhooks/shopify/shop", webhook.__call__, methods=("POST",), public=True)
    with server:
        yield f"{server.url}/webhooks/shopify/shop", policy


def _redact(url: str, *, tamper: bool) -> int:
    (delivery,) = send_compliance_webhooks(
        url,
        secret=SECRET,
        shop_domain="espd-demo.myshopify.com",
        customer={"id": 1, "email": "Erase.Me@example.com", "phone": "555"},
        topics=("customers/redact",),
        tamper=tamper,
        attempts=1,
    )
    return delivery.statuses[-1]


def _profile_ids(engine: Engine, email: str) -> set[int]:
    with Session(engine) as session:
        pids = set(session.execute(select(tables.Profile.id).where(tables.Profile.email == email)).scalars())
        rows = session.execute(select(tables.Identity.profile_id).where(tables.Identity.email == email))
        return pids | {pid for pid in rows.scalars() if pid is not None}


def _rows_of(engine: Engine, pids: set[int]) -> dict[str, int]:
    """Rows per table that belong to these customers (by their ids, which outlive an erasure)."""
    with Session(engine) as session:
        counts = {
            "profiles": session.execute(
                select(func.count()).select_from(tables.Profile).where(tables.Profile.id.in_(pids))
            ).scalar_one()
        }
        for table in PER_PERSON:
            counts[table.__tablename__] = session.execute(
                select(func.count()).select_from(table).where(table.profile_id.in_(pids))  # type: ignore[attr-defined]
            ).scalar_one()
        counts["order_lines"] = session.execute(
            select(func.count()).select_from(tables.OrderLine).where(tables.OrderLine.order_vendor_id == "o1")
        ).scalar_one()
    return counts


def test_bad_signature_changes_nothing_good_one_erases_everywhere_and_a_stale_page_stays_out(
    store_engine: Engine, served: tuple[str, IngestPolicy]
) -> None:
    url, policy = served
    pids = _profile_ids(store_engine, ERASED)
    before = _rows_of(store_engine, pids)
    assert all(before.values()), f"the seed must give the person a row in every table: {before}"
    everything = row_counts(store_engine)

    assert _redact(url, tamper=True) == 401
    assert row_counts(store_engine) == everything, "a bad signature deleted something"

    assert _redact(url, tamper=False) == 200
    assert _rows_of(store_engine, pids) == dict.fromkeys(before, 0)
    with Session(store_engine) as session:
        assert session.execute(select(tables.Profile.email)).scalars().all() == ["keep@example.com"]
        tombstone = session.execute(select(tables.Erasure)).scalar_one()
    assert ERASED not in repr(tombstone.model_dump()), "only a keyed hash of the email is kept"

    stale = Page([Profile(source="kl", vendor_id="K1", email=ERASED, updated_at=NOW)], {"page": "stale"})
    with session_scope(store_engine) as session:
        written = write_page(session, "kl", "profiles", stale, policy)
    assert (written.written, written.erased) == (0, 1)
    assert _profile_ids(store_engine, ERASED) == set()
