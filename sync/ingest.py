"""Write one pulled page into the store, checkpoint included, in the caller's transaction.

Identity resolution happens here: a vendor record is linked to the customer (`Profile`) with the
same normalized email; a record without an email keeps its own profile, reached through its
`Identity` (source + vendor id). Orders and events find their customer through the identity of
the vendor's customer id first, the email second. Everything is batched per page: a handful of
statements whatever the page size.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlmodel import Session

from connectors.base import Page, SkippedRecord
from connectors.records import EngagementEvent, Order, Profile
from sync import tables
from sync.partitions import ensure_event_partitions, event_key
from sync.privacy import erased_emails
from sync.storable import Minimization, storable
from sync.store import dialect_insert, upsert

R = TypeVar("R", Profile, Order, EngagementEvent)
PROFILE_ATTRIBUTES = ("country", "timezone", "created_at")


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    raw_retention: timedelta
    now: datetime
    erasure_key: bytes | None = None  # with it, records of erased people are dropped, not stored
    minimization: Minimization = field(default_factory=Minimization)


@dataclass(frozen=True, slots=True)
class PageWrite:
    written: int
    erased: int  # records dropped because their person was erased
    unstorable: tuple[SkippedRecord, ...] = ()  # records the store cannot hold (see sync/storable.py)


def write_page(session: Session, connector: str, stream: str, page: Page, policy: IngestPolicy) -> PageWrite:
    """Upsert the page's records and its checkpoint together (erased people's records are dropped)."""
    checked = storable(stream, page.records, policy.now, policy.minimization)
    records = checked.records
    arrived = len(records)
    erased: set[str] = set()
    if policy.erasure_key is not None:
        erased = erased_emails(session, policy.erasure_key, (r.email for r in records if r.email))
        records = [r for r in records if r.email not in erased] if erased else records
    profiles = [r for r in records if isinstance(r, Profile)]
    orders = [r for r in records if isinstance(r, Order)]
    events = [r for r in records if isinstance(r, EngagementEvent)]
    _write_profiles(session, profiles, policy)
    _write_orders(session, orders, policy)
    _write_events(session, events, policy)
    upsert(
        session,
        tables.SyncState,
        [{"connector": connector, "stream": stream, "cursor": page.checkpoint, "updated_at": policy.now}],
    )
    return PageWrite(written=len(records), erased=arrived - len(records), unstorable=tuple(checked.skipped))


def _profile_ids_by_email(
    session: Session, attributes: dict[str, dict[str, object]], now: datetime
) -> dict[str, int]:
    """Ids of the customers with these emails, creating the ones not seen before.

    `attributes` (email -> country/timezone/created_at) fill what the customer's row lacks: a value
    once known is kept, so the order in which platforms are pulled does not matter.
    """
    wanted = sorted(attributes)
    if not wanted:
        return {}
    statement = _profile_upsert(session.get_bind().dialect.name)
    rows = [
        {"email": e, "updated_at": now, **{k: attributes[e].get(k) for k in PROFILE_ATTRIBUTES}}
        for e in wanted
    ]
    session.execute(statement, rows)
    columns = (
        tables.Profile.__table__.c
    )  # Core columns: an ORM-attribute select costs more than the query itself
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.execute(select(columns.email, columns.id).where(columns.email.in_(chunk)))
        found.update({email: pid for email, pid in rows})
    return found


@functools.lru_cache(maxsize=4)
def _profile_upsert(dialect: str) -> Any:
    """Insert customers by email, filling only what their row lacks (built once per backend)."""
    table = tables.Profile.__table__
    statement = dialect_insert(dialect)(table)
    return statement.on_conflict_do_update(
        index_elements=["email"],
        set_={k: func.coalesce(table.c[k], statement.excluded[k]) for k in PROFILE_ATTRIBUTES},
    )


def _profile_ids_by_identity(session: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Profile ids by (source, vendor id), one `vendor_id IN (...)` per source (a page has one source)."""
    by_source: dict[str, list[str]] = {}
    for source, vendor_id in sorted(set(keys)):
        by_source.setdefault(source, []).append(vendor_id)
    columns = tables.Identity.__table__.c
    found: dict[tuple[str, str], int] = {}
    for source, vendor_ids in by_source.items():
        for start in range(0, len(vendor_ids), 500):
            rows = session.execute(
                select(columns.vendor_id, columns.profile_id).where(
                    columns.source == source, columns.vendor_id.in_(vendor_ids[start : start + 500])
                )
            )
            found.update({(source, vid): pid for vid, pid in rows if pid is not None})
    return found


def _anonymous_profile_ids(
    session: Session, records: Sequence[Profile], now: datetime
) -> dict[tuple[str, str], int]:
    """Customers known only by a platform id (no email): found by identity, else created."""
    keys = [(r.source, r.vendor_id) for r in records]
    known = _profile_ids_by_identity(session, keys)
    for r in records:
        values = {k: getattr(r, k) for k in PROFILE_ATTRIBUTES if getattr(r, k) is not None}
        key = (r.source, r.vendor_id)
        if key in known:
            if values:
                session.execute(
                    update(tables.Profile).where(tables.Profile.id == known[key]).values(**values)
                )
            continue
        profile = tables.Profile(updated_at=now, **values)
        session.add(profile)
        session.flush()
        known[key] = profile.id  # type: ignore[assignment]
    return known


def _write_profiles(session: Session, records: Sequence[Profile], policy: IngestPolicy) -> None:
    records = _latest(records)
    if not records:
        return
    by_email = _profile_ids_by_email(
        session,
        {r.email: {k: getattr(r, k) for k in PROFILE_ATTRIBUTES} for r in records if r.email},
        policy.now,
    )
    anonymous = _anonymous_profile_ids(session, [r for r in records if not r.email], policy.now)
    expires = policy.now + policy.raw_retention
    upsert(
        session,
        tables.Identity,
        [
            {
                "source": r.source,
                "vendor_id": r.vendor_id,
                "profile_id": by_email[r.email] if r.email else anonymous[(r.source, r.vendor_id)],
                "email": r.email,
                "external_id": r.external_id,
                "consent": r.consent.value,
                "vendor_created_at": r.created_at,
                "vendor_updated_at": r.updated_at,
                "properties": r.properties,
                "raw": r.raw,
                "raw_expires_at": expires,
                "pulled_at": policy.now,
            }
            for r in records
        ],
    )


def _latest(records: Sequence[R]) -> list[R]:
    """One record per vendor id (the last one in the page wins): a page may repeat a record."""
    return list({(r.source, r.vendor_id): r for r in records}.values())


def _customer_ids(
    session: Session, records: Sequence[Order] | Sequence[EngagementEvent], now: datetime
) -> list[int | None]:
    by_identity = _profile_ids_by_identity(
        session, [(r.source, r.customer_vendor_id) for r in records if r.customer_vendor_id]
    )
    by_email = _profile_ids_by_email(
        session,
        {r.email: {} for r in records if r.email and (r.source, r.customer_vendor_id) not in by_identity},
        now,
    )
    return [
        by_identity.get((r.source, r.customer_vendor_id or ""))
        or (by_email.get(r.email) if r.email else None)
        for r in records
    ]


def _write_orders(session: Session, records: Sequence[Order], policy: IngestPolicy) -> None:
    records = _latest(records)
    if not records:
        return
    expires = policy.now + policy.raw_retention
    profile_ids = _customer_ids(session, records, policy.now)
    upsert(
        session,
        tables.Order,
        [
            {
                "source": r.source,
                "vendor_id": r.vendor_id,
                "profile_id": pid,
                "customer_vendor_id": r.customer_vendor_id,
                "ordered_at": r.ordered_at,
                "updated_at": r.updated_at,
                "currency": r.currency,
                "total": r.total,
                "discount_total": r.discount_total,
                "discount_code": r.discount_code,
                "cancelled_at": r.cancelled_at,
                "raw": r.raw,
                "raw_expires_at": expires,
            }
            for r, pid in zip(records, profile_ids, strict=True)
        ],
    )
    upsert(
        session,
        tables.OrderLine,
        [
            {
                "source": r.source,
                "order_vendor_id": r.vendor_id,
                "vendor_id": line.vendor_id,
                "product_id": line.product_id,
                "category": line.category,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "discount": line.discount,
            }
            for r in records
            for line in r.lines
        ],
    )


def _write_events(session: Session, records: Sequence[EngagementEvent], policy: IngestPolicy) -> None:
    records = _latest(records)
    if not records:
        return
    profile_ids = _customer_ids(session, records, policy.now)
    ensure_event_partitions(session, [r.occurred_at for r in records])
    upsert(
        session,
        tables.Event,
        [
            {
                "source": r.source,
                "vendor_id": r.vendor_id,
                "profile_id": pid,
                "customer_vendor_id": r.customer_vendor_id,
                "kind": r.kind.value,
                "occurred_at": r.occurred_at,
                "campaign_id": r.campaign_id,
                "url": r.url,
            }
            for r, pid in zip(records, profile_ids, strict=True)
        ],
        conflict_columns=event_key(session),
    )
