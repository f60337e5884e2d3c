"""Write one pulled page into the store, checkpoint included, in the caller's transaction.

Identity resolution happens here: a vendor record is linked to the customer (`Profile`) with the
same normalized email; a record without an email keeps its own profile, reached through its
`Identity` (source + vendor id). Orders and events find their customer through the identity of
the vendor's customer id first, the email second. Everything is batched per page: a handful of
statements whatever the page size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select, update
from sqlmodel import Session

from connectors.base import Page, SkippedRecord
from connectors.records import EngagementEvent, Order, Profile
from sync import tables
from sync.partitions import ensure_event_partitions, event_key
from sync.privacy import erased_emails
from sync.storable import Minimization, storable
from sync.store import upsert

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
    unchanged: int = 0  # profiles that were only espd's own pushes coming back (not written)
    rejected: Mapping[str, int] = field(default_factory=dict)  # rows the bulk writer refused, by reason


def write_page(session: Session, connector: str, stream: str, page: Page, policy: IngestPolicy) -> PageWrite:
    """Upsert the page's records and its checkpoint together (erased people's records are dropped)."""
    checked = storable(stream, page.records, policy.now, policy.minimization)
    records = checked.records
    arrived = len(records)
    erased: set[str] = set()
    if policy.erasure_key is not None:
        erased = erased_emails(session, policy.erasure_key, (r.email for r in records if r.email))
        records = [r for r in records if r.email not in erased] if erased else records
    profiles = _latest([r for r in records if isinstance(r, Profile)])
    orders = [r for r in records if isinstance(r, Order)]
    events = [r for r in records if isinstance(r, EngagementEvent)]
    unchanged = _unchanged_profiles(session, profiles)
    if unchanged:
        profiles = [r for r in profiles if (r.source, r.vendor_id) not in unchanged]
    rejected: Counter[str] = Counter()
    rejected += _write_profiles(session, profiles, policy)
    rejected += _write_orders(session, orders, policy)
    rejected += _write_events(session, events, policy)
    upsert(
        session,
        tables.SyncState,
        [{"connector": connector, "stream": stream, "cursor": page.checkpoint, "updated_at": policy.now}],
    )
    return PageWrite(
        written=len(records) - len(unchanged) - rejected.total(),
        erased=arrived - len(records),
        unstorable=tuple(checked.skipped),
        unchanged=len(unchanged),
        rejected=dict(rejected),
    )


def _unchanged_profiles(session: Session, records: Sequence[Profile]) -> set[tuple[str, str]]:
    """The records that are only espd's own push coming back: skipped, so an echo writes nothing.

    Every push changes the vendor's record (its update time, and the fields espd wrote), so the next
    pull brings back every customer espd wrote. Such a record is left alone when the push ledger shows
    espd confirmed a push to this customer at this destination after the stored identity was last
    pulled, and its email, external id, consent and creation time are what the store holds: only
    custom properties moved, which is what espd's push does, whatever the vendor calls the fields.
    The cost: a change to another custom property made at the vendor in that same window waits for
    the record's next change. Raw JSON and vendor update time are refreshed with the next real change.
    """
    if not records:
        return set()
    identity_table = tables.Identity.__table__  # type: ignore[attr-defined]
    ledger_table = tables.PushLedger.__table__  # type: ignore[attr-defined]
    identities, ledger = identity_table.c, ledger_table.c
    wanted = {(r.source, r.vendor_id): r for r in records}
    unchanged: set[tuple[str, str]] = set()
    for source, vendor_ids in _by_source(wanted):
        statement = (
            select(
                identities.vendor_id,
                identities.email,
                identities.external_id,
                identities.consent,
                identities.vendor_created_at,
                identities.pulled_at,
                ledger.confirmed_at,
            )
            .select_from(identity_table)
            .outerjoin(
                ledger_table,
                (ledger.destination == identities.source) & (ledger.profile_id == identities.profile_id),
            )
            .where(
                identities.source == source,
                identities.vendor_id.in_(vendor_ids),
                identities.profile_id.is_not(None),
            )
        )
        for vendor_id, *stored, pulled, pushed in session.execute(statement):
            r = wanted[(source, vendor_id)]
            if (r.email, r.external_id, r.consent.value, r.created_at) != tuple(stored):
                continue
            if pushed is not None and pulled is not None and pushed >= pulled:
                unchanged.add((source, vendor_id))
    return unchanged


def _by_source(keys: Iterable[tuple[str, str]]) -> Iterator[tuple[str, list[str]]]:
    """(source, up to 500 vendor ids) chunks: one `IN (...)` each, within every backend's limits."""
    by_source: dict[str, list[str]] = {}
    for source, vendor_id in sorted(set(keys)):
        by_source.setdefault(source, []).append(vendor_id)
    for source, vendor_ids in by_source.items():
        for start in range(0, len(vendor_ids), 500):
            yield source, vendor_ids[start : start + 500]


def _profile_ids_by_email(
    session: Session, attributes: dict[str, dict[str, object]], now: datetime
) -> dict[str, int]:
    """Ids of the customers with these emails, creating the ones not seen before.

    `attributes` (email -> country/timezone/created_at) fill what the customer's row lacks: a value
    once known is kept, so the order in which platforms are pulled does not matter. The rows are read
    first and only new customers and actual fills are written: orders and events bring emails without
    attributes, and upserting every one of them rewrote each known customer's row once per batch
    (a fifth of an events batch's write time).
    """
    wanted = sorted(attributes)
    if not wanted:
        return {}
    stored = _profiles_by_email(session, wanted)
    changing = [e for e in wanted if e not in stored or _fills(stored[e], attributes[e])]
    if changing:
        rows = [
            {"email": e, "updated_at": now, **{k: attributes[e].get(k) for k in PROFILE_ATTRIBUTES}}
            for e in changing
        ]
        upsert(
            session,
            tables.Profile,
            rows,
            update_columns=PROFILE_ATTRIBUTES,
            conflict_columns=("email",),
            fill_only=PROFILE_ATTRIBUTES,
        )
        stored.update(_profiles_by_email(session, [e for e in changing if e not in stored]))
    return {email: row[0] for email, row in stored.items()}


def _fills(stored: Sequence[object], attributes: Mapping[str, object]) -> bool:
    """Whether `attributes` hold a value for an attribute the stored row (id, *attributes) lacks."""
    return any(
        have is None and attributes.get(k) is not None
        for k, have in zip(PROFILE_ATTRIBUTES, stored[1:], strict=True)
    )


def _profiles_by_email(session: Session, emails: Sequence[str]) -> dict[str, tuple[object, ...]]:
    """email -> (id, *PROFILE_ATTRIBUTES) of the stored customers among `emails`, 500 per `IN (...)`."""
    columns = tables.Profile.__table__.c  # type: ignore[attr-defined]  # Core: ORM selects cost more
    selected = [columns.email, columns.id, *(columns[k] for k in PROFILE_ATTRIBUTES)]
    found: dict[str, tuple[object, ...]] = {}
    for start in range(0, len(emails), 500):
        chunk = emails[start : start + 500]
        for email, *row in session.execute(select(*selected).where(columns.email.in_(chunk))):
            found[email] = tuple(row)
    return found


def _profile_ids_by_identity(session: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Profile ids by (source, vendor id), one `vendor_id IN (...)` per source (a page has one source)."""
    columns = tables.Identity.__table__.c  # type: ignore[attr-defined]
    found: dict[tuple[str, str], int] = {}
    for source, vendor_ids in _by_source(keys):
        rows = session.execute(
            select(columns.vendor_id, columns.profile_id).where(
                columns.source == source, columns.vendor_id.in_(vendor_ids)
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


def _write_profiles(session: Session, records: Sequence[Profile], policy: IngestPolicy) -> Counter[str]:
    records = _latest(records)
    if not records:
        return Counter()
    by_email = _profile_ids_by_email(
        session,
        {r.email: {k: getattr(r, k) for k in PROFILE_ATTRIBUTES} for r in records if r.email},
        policy.now,
    )
    anonymous = _anonymous_profile_ids(session, [r for r in records if not r.email], policy.now)
    expires = policy.now + policy.raw_retention
    return upsert(
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
    ).rejected


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


def _write_orders(session: Session, records: Sequence[Order], policy: IngestPolicy) -> Counter[str]:
    records = _latest(records)
    if not records:
        return Counter()
    expires = policy.now + policy.raw_retention
    profile_ids = _customer_ids(session, records, policy.now)
    rejected = upsert(
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
    ).rejected
    rejected += upsert(
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
    ).rejected
    return rejected


def _write_events(session: Session, records: Sequence[EngagementEvent], policy: IngestPolicy) -> Counter[str]:
    records = _latest(records)
    if not records:
        return Counter()
    profile_ids = _customer_ids(session, records, policy.now)
    ensure_event_partitions(session, [r.occurred_at for r in records])
    return upsert(
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
    ).rejected
