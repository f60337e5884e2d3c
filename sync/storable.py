"""What of a pulled page may be stored: records every backend can hold, minus what espd does not need.

A canonical record is valid as data, yet a hostile or broken vendor can still send one the store
refuses: an id longer than its column, a quantity past a 32-bit integer, NaN inside the raw JSON
(PostgreSQL's json type rejects it), a date in year 1 or 9999 (pandas cannot hold it when scoring).
On PostgreSQL one such record fails its whole page's transaction, and with it the run; SQLite
would store it silently and the scoring would fail later. So each record is checked against the
columns it will land in (their limits are read from the tables, never copied) and a record that
does not fit is skipped with a counted reason, while the rest of its page is stored.

Data minimization happens here too: of the vendor's custom properties only the ones espd reads
(sensitive attributes for the segment audit, and the operator's `privacy.extra_fields`) are kept,
and the raw vendor JSON is not kept at all when its retention is zero days.
"""

from __future__ import annotations

import abc
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer, String, TypeDecorator

from connectors.base import SkippedRecord
from connectors.records import Canonical, EngagementEvent, Order, OrderLine, Profile
from sync import tables
from sync.config import Config
from sync.tables import UtcDateTime

PulledRecord = Profile | Order | EngagementEvent
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=366)
"""A date later than this after the pull is a vendor bug, not a plan (and pandas stops at 2262)."""
_IMPLAUSIBLE_DATE = f"is an implausible date (before {EARLIEST:%Y} or over a year ahead)"
_INT_RANGE = {Integer: 2**31, BigInteger: 2**63}
# Where each canonical record's fields land: the first of these tables with a column of that name.
_TABLES: dict[type[Canonical], tuple[type, ...]] = {
    Profile: (tables.Identity, tables.Profile),
    Order: (tables.Order, tables.Profile),
    OrderLine: (tables.OrderLine,),
    EngagementEvent: (tables.Event, tables.Profile),
}


@dataclass(frozen=True, slots=True)
class Minimization:
    """What espd keeps beyond the fields the engine uses (None: every property, for callers that
    store a vendor's records without a config, such as tests of a connector's mapping)."""

    keep_properties: frozenset[str] | None = None
    keep_raw: bool = True


@dataclass(frozen=True, slots=True)
class Storable:
    records: list[PulledRecord]
    skipped: list[SkippedRecord]


def storable(
    stream: str, records: Sequence[PulledRecord], now: datetime, minimization: Minimization
) -> Storable:
    """The records the store can hold, minimized, and a skip (with its reason) for each other one.

    A page is first checked field by field across all its records (C loops: `max(map(len, …))`,
    one JSON encoding of every value); record by record, naming each misfit's reason, only when
    that finds one. Per record, the checks were most of this module's cost on every pulled page.
    """
    latest = now + FUTURE_SLACK
    # A dropped property cannot make a record unstorable: minimize first.
    minimized = [_minimized(record, minimization) for record in records]
    if _all_fit(minimized, latest):
        return Storable(minimized, [])
    kept: list[PulledRecord] = []
    skipped: list[SkippedRecord] = []
    for record in minimized:
        problem = _problem(record, latest)
        if problem is None:
            kept.append(record)
        else:
            skipped.append(SkippedRecord(stream, record.vendor_id[:128], problem))
    return Storable(kept, skipped)


def _all_fit(records: Sequence[Canonical], latest: datetime) -> bool:
    """Whether every record fits every column (True is certain; False means look record by record)."""
    by_type: dict[type[Canonical], list[Canonical]] = {}
    for record in records:
        by_type.setdefault(type(record), []).append(record)
    for record_type, group in by_type.items():
        for name, limit in _checks(record_type):
            if not limit.fits_all([v for v in map(attrgetter(name), group) if v is not None], latest):
                return False
        if record_type is Order:
            lines = [line for order in group for line in order.lines]  # type: ignore[attr-defined]
            if lines and not _all_fit(lines, latest):
                return False
    return True


def _problem(record: Canonical, latest: datetime) -> str | None:
    for name, limit in _checks(type(record)):
        value = getattr(record, name)
        if value is not None and (problem := limit.problem(value, latest)) is not None:
            return f"{name} {problem}"
    if isinstance(record, Order):
        for line in record.lines:
            if (problem := _problem(line, latest)) is not None:
                return f"order line {problem}"
    return None


@functools.cache
def _checks(record_type: type[Canonical]) -> tuple[tuple[str, Limit], ...]:
    """(field, limit) for every field the store keeps in a column of its own name that has a limit."""
    found = []
    for name in record_type.model_fields:
        column = next((c for t in _TABLES[record_type] if (c := t.__table__.c.get(name)) is not None), None)
        limit = _column_limit(column) if column is not None else None
        if limit is not None:
            found.append((name, limit))
    return tuple(found)


class Limit(abc.ABC):
    """One column's limit (built once: ingest checks it on every record)."""

    @abc.abstractmethod
    def problem(self, value: Any, latest: datetime) -> str | None:
        """What makes this one value unstorable, or None."""

    @abc.abstractmethod
    def fits_all(self, values: list[Any], latest: datetime) -> bool:
        """Whether every one of these (non-None) values is storable, checked at once."""


@dataclass(frozen=True, slots=True)
class _DateLimit(Limit):
    def problem(self, value: Any, latest: datetime) -> str | None:
        return None if EARLIEST <= value <= latest else _IMPLAUSIBLE_DATE

    def fits_all(self, values: list[Any], latest: datetime) -> bool:
        return not values or (min(values) >= EARLIEST and max(values) <= latest)


@dataclass(frozen=True, slots=True)
class _LengthLimit(Limit):
    length: int

    def problem(self, value: Any, latest: datetime) -> str | None:
        return f"longer than {self.length} characters" if len(value) > self.length else None

    def fits_all(self, values: list[Any], latest: datetime) -> bool:
        return max(map(len, values), default=0) <= self.length


@dataclass(frozen=True, slots=True)
class _IntegerLimit(Limit):
    bound: int

    def problem(self, value: Any, latest: datetime) -> str | None:
        return None if -self.bound <= value < self.bound else "out of the integer range the store holds"

    def fits_all(self, values: list[Any], latest: datetime) -> bool:
        return not values or (-self.bound <= min(values) and max(values) < self.bound)


@dataclass(frozen=True, slots=True)
class _JsonLimit(Limit):
    def problem(self, value: Any, latest: datetime) -> str | None:
        return _json_problem(value)

    def fits_all(self, values: list[Any], latest: datetime) -> bool:
        return _json_problem(values) is None  # nesting them one level deeper can only fail more


def _column_limit(column: Column[Any]) -> Limit | None:
    kind = column.type
    if isinstance(kind, UtcDateTime):
        return _DateLimit()
    kind = kind.impl if isinstance(kind, TypeDecorator) else kind  # SQLModel's AutoString wraps String
    if isinstance(kind, String) and kind.length is not None:
        return _LengthLimit(kind.length)
    if isinstance(kind, Integer):
        return _IntegerLimit(_INT_RANGE[BigInteger if isinstance(kind, BigInteger) else Integer])
    if isinstance(kind, JSON):
        return _JsonLimit()
    return None


_STRICT_JSON = json.JSONEncoder(allow_nan=False, check_circular=False)


def _json_problem(value: Any) -> str | None:
    try:
        _STRICT_JSON.encode(value)
    except ValueError:
        return "holds NaN or Infinity, which JSON cannot"
    except RecursionError:
        return "is nested too deeply"
    except TypeError:
        return "holds a value JSON cannot"
    return None


def _minimized(record: PulledRecord, minimization: Minimization) -> PulledRecord:
    changes: dict[str, Any] = {}
    if not minimization.keep_raw and record.raw:
        changes["raw"] = {}
    keep = minimization.keep_properties
    if isinstance(record, Profile) and keep is not None and not keep.issuperset(record.properties):
        changes["properties"] = {k: v for k, v in record.properties.items() if k in keep}
    return record.model_copy(update=changes) if changes else record


def minimization_for(config: Config) -> Minimization:
    """Keep the vendor properties espd reads (sensitive attributes, for the segment audit) and the
    operator's `privacy.extra_fields`; keep raw JSON only if it is to be retained at all."""
    keep = frozenset(config.engine.sensitive_attributes) | frozenset(config.privacy.extra_fields)
    return Minimization(keep_properties=keep, keep_raw=config.store.raw_retention_days > 0)
