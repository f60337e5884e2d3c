"""Monthly partitions of the events table on PostgreSQL, made before the rows that need them arrive.

Events are most of a shop's rows and only ever grow; ranging them by month of `occurred_at` lets a
query for a window (a training cutoff, a recent-engagement feature) read only that window's
partitions, and lets old history be detached or dropped a month at a time instead of deleted row by
row. PostgreSQL routes each row to its partition but does not create one: a row of a month without a
partition is refused. So every write of events first asks `ensure_event_partitions` for the
months it carries (and for this month and the next, so the turn of a month never has to wait for
one). A partition is created as a plain table and then attached, which locks the parent only against
schema changes (SHARE UPDATE EXCLUSIVE) instead of against every reader, in its own short
transaction, under an advisory lock so two daemons never race to create the same month. That lock
does not conflict with the row locks of writers, the caller's own open transaction included, which
is also why the partitioned events table has no foreign key to `profiles`: attaching a partition
would then lock `profiles` against every writer, and wait forever on a caller that wrote a profile
earlier in the same transaction. Ingest only ever sets `profile_id` to a profile it has just found
or made, and erasure deletes a person's events before the person.

SQLite has no partitions: there the events table is one table and this module does nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text
from sqlmodel import Session

PARENT = "events"
# The primary key of a partitioned table must hold the partition key: on PostgreSQL an event is
# unique by (source, vendor_id, occurred_at), which vendors' immutable events make the same thing.
POSTGRES_EVENT_KEY = ("source", "vendor_id", "occurred_at")
_ADVISORY_LOCK = 0x65737064  # "espd": serialises partition creation across daemons
_known: weakref.WeakKeyDictionary[Engine, set[datetime]] = weakref.WeakKeyDictionary()


def month_start(moment: datetime) -> datetime:
    """The first instant of `moment`'s month in UTC: the lower bound of its partition."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def next_month(month: datetime) -> datetime:
    return datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"{PARENT}_p{month:%Y%m}"


def create_month_partition(connection: Connection, month: datetime) -> None:
    """Create and attach `month`'s partition unless it exists (call under the advisory lock)."""
    name = partition_name(month)
    if connection.execute(text("SELECT to_regclass(:name)"), {"name": name}).scalar() is not None:
        return
    connection.execute(text(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)"))
    bounds = f"FROM ('{month.isoformat()}') TO ('{next_month(month).isoformat()}')"  # DDL takes no parameters
    connection.execute(text(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES {bounds}"))


def event_key(session: Session) -> tuple[str, ...] | None:
    """The conflict target for upserting events: None (the primary key) except on PostgreSQL."""
    return POSTGRES_EVENT_KEY if session.get_bind().dialect.name == "postgresql" else None


def ensure_event_partitions(session: Session, moments: Iterable[datetime]) -> None:
    """Make sure a partition exists for the month of each of `moments`, and for this month and the next.

    Runs in a transaction of its own: a partition is not undone by a rollback of the caller's.
    """
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    engine = bind.engine if isinstance(bind, Connection) else bind
    this_month = month_start(datetime.now(UTC))
    months = {month_start(m) for m in moments} | {this_month, next_month(this_month)}
    known = _known.setdefault(engine, set())
    missing = months - known
    if not missing:
        return
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL lock_timeout = '30s'"))
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        for month in sorted(missing):
            create_month_partition(connection, month)
    known.update(missing)
