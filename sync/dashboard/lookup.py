"""One customer, as `espd explain` shows them: where they are known, their field values and why.

Looked up by the store's profile id or by a vendor's id for them, never by email, and the view
holds no email: the platforms are listed by vendor id. The field values are computed exactly as the
push stage computes them (sync.fields.field_values on the stored scores), per destination, so what
the page shows is what was (or will be) written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from connectors.records import FieldValue
from sync import tables
from sync.config import Config
from sync.fields import field_values, outputs_for
from sync.logs import redact
from sync.scoring import TEXT_OUTPUTS


class BadLookup(ValueError):
    """The lookup key is unusable (empty, an email, too long); the message says why."""


@dataclass(frozen=True)
class Platform:
    source: str
    vendor_id: str
    consent: str
    pulled_at: datetime | None


@dataclass(frozen=True)
class DestinationFields:
    destination: str
    values: list[tuple[str, FieldValue, str]]  # name, value, what it means
    confirmed_at: datetime | None
    parked: bool
    last_error: str | None


@dataclass
class CustomerView:
    profile_id: int
    country: str | None
    platforms: list[Platform]
    orders: int
    spend: float
    scored: bool
    model_version: str
    model_kind: str
    scored_at: datetime | None
    reasons: dict[str, list[str]] = field(default_factory=dict)  # output -> phrases
    destinations: list[DestinationFields] = field(default_factory=list)


def check_key(key: str) -> str:
    key = key.strip()
    if not key:
        raise BadLookup("give a profile id or a vendor id")
    if "@" in key:
        raise BadLookup("look customers up by id, not by email (emails are never shown or searched)")
    if len(key) > 128:
        raise BadLookup("an id is at most 128 characters")
    return key


def find_by_vendor_id(engine: Engine, vendor_id: str) -> list[tuple[str, int]]:
    """(source, profile id) of every identity with this vendor id."""
    with Session(engine) as session:
        rows = session.execute(
            select(tables.Identity.source, tables.Identity.profile_id).where(
                tables.Identity.vendor_id == check_key(vendor_id), tables.Identity.profile_id.is_not(None)
            )
        ).all()
    return sorted((source, int(pid)) for source, pid in rows)


def reasons_from(stored: list[str] | None) -> list[str]:
    """The stored reasons as phrases; a list of single characters is one '; '-joined text split apart
    (sync/scoring.py stores `list()` of the engine's joined string)."""
    if not stored:
        return []
    text = "".join(stored) if all(len(part) == 1 for part in stored) else "; ".join(stored)
    return [part for part in text.split("; ") if part]


def _scores(session: Session, profile_id: int) -> list[tables.Score]:
    return list(session.execute(select(tables.Score).where(tables.Score.profile_id == profile_id)).scalars())


def _destination(
    config: Config,
    name: str,
    scores: dict[str, Any] | None,
    stamp: datetime,
    version: str,
    ledger: tables.PushLedger | None,
) -> DestinationFields:
    """The fields exactly as the push stage renders them for this destination, with their meaning."""
    prefix = config.fields.prefix
    outputs = outputs_for(config, name)
    meaning = {prefix + f.output: f.description for f in outputs}
    values = field_values(prefix, outputs, scores, stamp.date(), version)
    return DestinationFields(
        name,
        [
            (n, v, meaning.get(n, "stamp: when and by which model the values were computed"))
            for n, v in values.items()
        ],
        ledger.confirmed_at if ledger else None,
        bool(ledger and ledger.parked),
        redact(ledger.last_error) if ledger and ledger.last_error else None,
    )


def explain_customer(engine: Engine, config: Config, profile_id: int) -> CustomerView | None:
    """Everything espd knows and computed about one customer, or None when there is no such profile."""
    with Session(engine) as session:
        profile = session.get(tables.Profile, profile_id)
        if profile is None:
            return None
        identities = (
            session.execute(select(tables.Identity).where(tables.Identity.profile_id == profile_id))
            .scalars()
            .all()
        )
        n_orders, spend = session.execute(
            select(func.count(), func.coalesce(func.sum(tables.Order.total), 0.0)).where(
                tables.Order.profile_id == profile_id, tables.Order.cancelled_at.is_(None)
            )
        ).one()
        rows = _scores(session, profile_id)
        ledgers = {
            row.destination: row
            for row in session.execute(
                select(tables.PushLedger).where(tables.PushLedger.profile_id == profile_id)
            ).scalars()
        }
    scores = {r.output: (r.value_text if r.output in TEXT_OUTPUTS else r.value_num) for r in rows} or None
    stamp = max((r.scored_at for r in rows if r.scored_at), default=None)
    version = rows[0].model_version if rows else "-"
    view = CustomerView(
        profile_id=profile_id,
        country=profile.country,
        platforms=[
            Platform(i.source, i.vendor_id, i.consent, i.pulled_at)
            for i in sorted(identities, key=lambda i: i.source)
        ],
        orders=int(n_orders),
        spend=float(spend),
        scored=scores is not None,
        model_version=version,
        model_kind=", ".join(sorted({r.model_kind for r in rows})) or "-",
        scored_at=stamp,
        reasons={r.output: reasons_from(r.reasons) for r in rows if r.reasons},
    )
    held = {i.source for i in identities}
    view.destinations = [
        _destination(config, name, scores, stamp or datetime.now(UTC), version, ledgers.get(name))
        for name, connector in config.connectors.items()
        if connector.push and name in held
    ]
    return view
