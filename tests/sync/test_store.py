"""The store suite: runs unchanged on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, select
from sqlmodel import Session

from sync import tables
from sync.store import migrate, open_engine, row_counts, session_scope, upsert

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _orders(n: int, total: float) -> list[dict]:
    return [
        {
            "source": "shop",
            "vendor_id": f"o{i}",
            "ordered_at": T0 + timedelta(hours=i),
            "updated_at": T0 + timedelta(hours=i),
            "currency": "EUR",
            "total": total + i,
            "discount_total": 0.0,
            "raw": {"id": f"o{i}", "nested": {"ünïcode": "✓"}},
        }
        for i in range(n)
    ]


def test_migrations_create_every_table(store_engine: Engine) -> None:
    names = set(inspect(store_engine).get_table_names())
    expected = {
        "profiles", "identities", "orders", "order_lines", "events", "sync_state", "scores",
        "push_ledger", "field_definitions", "models", "runs", "alembic_version",
    }  # fmt: skip
    assert expected <= names


def test_migrate_twice_is_harmless(store_engine: Engine) -> None:
    with session_scope(store_engine) as session:
        upsert(session, tables.Order, _orders(3, 10.0))
    migrate(store_engine)
    assert row_counts(store_engine)["orders"] == 3


def test_bulk_upsert_inserts_then_updates_without_duplicates(store_engine: Engine) -> None:
    with session_scope(store_engine) as session:
        assert upsert(session, tables.Order, _orders(1200, 10.0)) == 1200
    with session_scope(store_engine) as session:
        upsert(session, tables.Order, _orders(1300, 20.0))
    with Session(store_engine) as session:
        totals = session.execute(select(tables.Order.vendor_id, tables.Order.total)).all()
    assert len(totals) == 1300
    assert dict(totals)["o5"] == 25.0


def test_timestamps_round_trip_as_aware_utc(store_engine: Engine) -> None:
    local = datetime(2026, 5, 1, 12, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Paris")
    )
    with session_scope(store_engine) as session:
        upsert(
            session,
            tables.SyncState,
            [{"connector": "k", "stream": "profiles", "cursor": {"w": 1}, "updated_at": local}],
        )
    with Session(store_engine) as session:
        row = session.get(tables.SyncState, ("k", "profiles"))
    assert row is not None
    assert row.updated_at == local
    assert row.updated_at.tzinfo is not None and row.updated_at.utcoffset() == timedelta(0)
    assert row.cursor == {"w": 1}


def test_naive_timestamp_is_refused(store_engine: Engine) -> None:
    with pytest.raises(Exception, match="naive datetime"), session_scope(store_engine) as session:
        upsert(
            session, tables.SyncState, [{"connector": "k", "stream": "s", "updated_at": datetime(2026, 1, 1)}]
        )


def test_a_failed_transaction_leaves_nothing_behind(store_engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(store_engine) as session:
        upsert(session, tables.Order, _orders(5, 1.0))
        upsert(session, tables.SyncState, [{"connector": "shop", "stream": "orders", "cursor": {"at": "x"}}])
        raise RuntimeError("crash between page and checkpoint")
    counts = row_counts(store_engine)
    assert counts["orders"] == 0


def test_profile_ids_autoincrement_and_email_is_unique(store_engine: Engine) -> None:
    with session_scope(store_engine) as session:
        upsert(session, tables.Profile, [{"email": "a@example.com"}, {"email": "b@example.com"}])
    with Session(store_engine) as session:
        ids = sorted(p.id for p in session.execute(select(tables.Profile)).scalars())
    assert len(ids) == 2 and ids[0] != ids[1]


def test_model_artifacts_store_bytes(store_engine: Engine) -> None:
    blob = bytes(range(256)) * 100
    with session_scope(store_engine) as session:
        session.add(tables.Model(output="churn", version="v1", kind="lightgbm", artifact=blob, created_at=T0))
    with Session(store_engine) as session:
        model = session.execute(select(tables.Model)).scalar_one()
    assert model.artifact == blob


def test_sqlite_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "state" / "espd.sqlite"
    engine = open_engine(f"sqlite:///{db}")
    migrate(engine)
    with session_scope(engine) as session:
        upsert(session, tables.Order, _orders(2, 1.0))
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    companions = [p for p in db.parent.iterdir() if p.name.startswith("espd.sqlite")]
    assert {p.name for p in companions} >= {"espd.sqlite", "espd.sqlite-wal", "espd.sqlite-shm"}
    for path in companions:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    engine.dispose()


def test_a_state_directory_others_can_read_is_reported_not_silently_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="espd.store"):
        open_engine(f"sqlite:///{shared / 'espd.sqlite'}").dispose()
        open_engine(f"sqlite:///{tmp_path / 'private' / 'espd.sqlite'}").dispose()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"event=state_dir_not_private path={shared} mode=755: other users may list it; chmod 700 it"
    ]
    assert stat.S_IMODE((shared / "espd.sqlite").stat().st_mode) == 0o600
