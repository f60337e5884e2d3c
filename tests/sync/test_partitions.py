"""Monthly event partitions on the real PostgreSQL server: migration with data, pruning, index use."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, text
from sqlmodel import Session

from connectors.base import Page
from connectors.records import EngagementEvent, EventKind
from sync import tables
from sync.ingest import IngestPolicy, write_page
from sync.partitions import create_month_partition, month_start, next_month
from sync.store import alembic_config, migrate, open_engine, session_scope

MONTHS = [datetime(2026, m, 1, tzinfo=UTC) for m in (9, 10, 11)]
ON_POSTGRES = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


@pytest.fixture
def at_0003(store_url: str) -> Iterator[Engine]:
    """A PostgreSQL store at the schema before partitioning."""
    engine = open_engine(store_url)
    migrate(engine, "0003")
    yield engine
    engine.dispose()


def _fill(connection: Connection, customers: int, events_per_month: int) -> None:
    """`customers` profiles with events spread over MONTHS (generated in SQL: thousands in milliseconds)."""
    connection.execute(
        text("INSERT INTO profiles (email) SELECT 'c' || i || '@example.com' FROM generate_series(1, :n) i"),
        {"n": customers},
    )
    for month in MONTHS:
        connection.execute(
            text(
                "INSERT INTO events (source, vendor_id, profile_id, kind, occurred_at) "
                "SELECT 'klaviyo', 'e' || to_char(CAST(:month AS timestamptz), 'YYYYMM') || '-' || i, "
                "1 + i % :customers, 'opened', CAST(:month AS timestamptz) + (i % 600) * interval '1 hour' "
                "FROM generate_series(1, :n) i"
            ),
            {"month": month, "customers": customers, "n": events_per_month},
        )


def _plan(connection: Connection, query: str, **params: object) -> str:
    rows = connection.execute(text(f"EXPLAIN {query}"), params).scalars()
    return "\n".join(rows)


def _partitions(connection: Connection) -> set[str]:
    return set(
        connection.execute(
            text("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'events'::regclass")
        ).scalars()
    )


@ON_POSTGRES
def test_migration_partitions_existing_events_by_month_and_keeps_them(at_0003: Engine) -> None:
    with at_0003.begin() as connection:
        _fill(connection, customers=50, events_per_month=400)
        before = connection.execute(
            text("SELECT source, vendor_id, profile_id, kind, occurred_at FROM events ORDER BY vendor_id")
        ).all()
    migrate(at_0003)
    with at_0003.connect() as connection:
        after = connection.execute(
            text("SELECT source, vendor_id, profile_id, kind, occurred_at FROM events ORDER BY vendor_id")
        ).all()
        partitions = _partitions(connection)
        window = _plan(
            connection,
            "SELECT count(*) FROM events WHERE occurred_at >= :low AND occurred_at < :high",
            low=MONTHS[1],
            high=next_month(MONTHS[1]),
        )
        tables_left = connection.execute(text("SELECT to_regclass('events_unpartitioned')")).scalar()
    assert after == before and len(after) == 1200
    assert partitions >= {"events_p202609", "events_p202610", "events_p202611"}
    assert "events_p202610" in window, window
    assert "events_p202609" not in window and "events_p202611" not in window, "no partition pruning"
    assert tables_left is None


@ON_POSTGRES
def test_downgrade_puts_the_events_back_in_one_table(at_0003: Engine) -> None:
    with at_0003.begin() as connection:
        _fill(connection, customers=10, events_per_month=50)
    migrate(at_0003)
    command.downgrade(alembic_config(at_0003), "0003")
    with at_0003.connect() as connection:
        kind = connection.execute(text("SELECT relkind FROM pg_class WHERE relname = 'events'")).scalar()
        count = connection.execute(text("SELECT count(*) FROM events")).scalar()
    assert (kind, count) == ("r", 150)


@ON_POSTGRES
def test_a_customers_events_are_read_through_the_index(store_engine: Engine) -> None:
    with store_engine.begin() as connection:
        for month in MONTHS:
            create_month_partition(connection, month)
        _fill(connection, customers=2000, events_per_month=20000)
        connection.execute(text("ANALYZE events"))
    with store_engine.connect() as connection:
        plan = _plan(
            connection,
            "SELECT kind, occurred_at FROM events WHERE profile_id = :pid AND occurred_at < :cutoff",
            pid=17,
            cutoff=MONTHS[2],
        )
    assert "ix_events_profile_time" in plan or "profile_id_occurred_at_idx" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert "events_p202611" not in plan, "the month after the cutoff should be pruned"


def _event(vendor_id: str, occurred_at: datetime) -> EngagementEvent:
    return EngagementEvent(
        source="klaviyo",
        vendor_id=vendor_id,
        email="ann@example.com",
        kind=EventKind.OPENED,
        occurred_at=occurred_at,
    )


def test_events_of_a_month_never_seen_are_written_and_rewritten_once(store_engine: Engine) -> None:
    far = datetime(2031, 7, 14, 9, 30, tzinfo=UTC)
    page = Page([_event("E1", far), _event("E2", far + timedelta(days=40))], {"datetime": "x"})
    policy = IngestPolicy(raw_retention=timedelta(days=30), now=datetime.now(UTC))
    for _ in range(2):  # a re-read page is an upsert on both backends, partition key or not
        with session_scope(store_engine) as session:
            write_page(session, "klaviyo", "events", page, policy)
    with Session(store_engine) as session:
        stored = session.execute(text("SELECT vendor_id, occurred_at FROM events ORDER BY vendor_id")).all()
    assert [v for v, _ in stored] == ["E1", "E2"]
    if store_engine.dialect.name == "postgresql":
        with store_engine.connect() as connection:
            partitions = _partitions(connection)
            where = connection.execute(text("SELECT tableoid::regclass::text FROM events ORDER BY vendor_id"))
            homes = where.scalars().all()
        assert homes == ["events_p203107", "events_p203108"]
        this_month = month_start(datetime.now(UTC))
        assert (
            f"events_p{this_month:%Y%m}" in partitions
            and f"events_p{next_month(this_month):%Y%m}" in partitions
        )
    assert tables.Event.__tablename__ == "events"
