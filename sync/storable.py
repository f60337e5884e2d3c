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

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic_core
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

    Checked a column at a time first (a length's maximum, a date's range, one JSON encoding of all the
    values): record by record, the checks were a seventh of an events batch's write. Only a page with
    a column out of its limits is checked record by record, to name each record and its reason.
    """
    latest = now + FUTURE_SLACK
    minimized = [_minimized(r, minimization) for r in records]  # a dropped property cannot fail a check
    if _columns_fit(minimized, latest):
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


def _columns_fit(records: Sequence[Canonical], latest: datetime) -> bool:
    """Whether every value of every checked field of `records` (order lines included) is in its limits."""
    by_type: dict[type[Canonical], list[Canonical]] = {}
    for record in records:
        by_type.setdefault(type(record), []).append(record)
    lines = [line for r in by_type.get(Order, ()) for line in r.lines]  # type: ignore[attr-defined]
    if lines:
        by_type[OrderLine] = lines
    for record_type, group in by_type.items():
        for name, limit in _limits(record_type):
            values = [v for r in group if (v := getattr(r, name)) is not None]
            if values and not limit.fits(values, latest):
                return False
    return True


Check = Callable[[Any, datetime], "str | None"]
Fits = Callable[[list[Any], datetime], bool]


@dataclass(frozen=True, slots=True)
class _Limit:
    """One column's limit, checked on one value (`problem`, which names it) or on a whole column."""

    problem: Check
    fits: Fits


def _problem(record: Canonical, latest: datetime) -> str | None:
    for name, limit in _limits(type(record)):
        value = getattr(record, name)
        if value is not None and (problem := limit.problem(value, latest)) is not None:
            return f"{name} {problem}"
    if isinstance(record, Order):
        for line in record.lines:
            if (problem := _problem(line, latest)) is not None:
                return f"order line {problem}"
    return None


@functools.cache
def _limits(record_type: type[Canonical]) -> tuple[tuple[str, _Limit], ...]:
    """(field, limit) for every field the store keeps in a column of its own name that has a limit."""
    found = []
    for name in record_type.model_fields:
        column = next((c for t in _TABLES[record_type] if (c := t.__table__.c.get(name)) is not None), None)
        limit = _column_limit(column) if column is not None else None
        if limit is not None:
            found.append((name, limit))
    return tuple(found)


def _column_limit(column: Column[Any]) -> _Limit | None:
    """The limit of one column (built once: ingest runs it on every page)."""
    kind = column.type
    if isinstance(kind, UtcDateTime):
        return _Limit(
            lambda value, latest: None if EARLIEST <= value <= latest else _IMPLAUSIBLE_DATE,
            lambda values, latest: min(values) >= EARLIEST and max(values) <= latest,
        )
    kind = kind.impl if isinstance(kind, TypeDecorator) else kind  # SQLModel's AutoString wraps String
    if isinstance(kind, String) and kind.length is not None:
        length, too_long = kind.length, f"longer than {kind.length} characters"
        return _Limit(
            lambda value, _: too_long if len(value) > length else None,
            lambda values, _: max(map(len, values)) <= length,
        )
    if isinstance(kind, Integer):
        limit = _INT_RANGE[BigInteger if isinstance(kind, BigInteger) else Integer]
        return _Limit(
            lambda value, _: None if -limit <= value < limit else "out of the integer range the store holds",
            lambda values, _: -limit <= min(values) and max(values) < limit,
        )
    if isinstance(kind, JSON):
        return _Limit(lambda value, _: _json_problem(value), lambda values, _: _json_problem(values) is None)
    return None


_STRICT_JSON = json.JSONEncoder(allow_nan=False, check_circular=False)


def _json_problem(value: Any) -> str | None:
    """Why `value` cannot be stored as JSON, or None. First by pydantic-core, the store's own encoder
    (sync.bulk), a quarter of `json`'s time; only a value it refuses, or whose text may hold NaN or
    Infinity (a string saying so is enough), goes through the strict `json` encoder for the verdict."""
    try:
        text = pydantic_core.to_json(value, inf_nan_mode="constants")
    except ValueError:  # PydanticSerializationError: too deep, a lone surrogate, an unknown type
        return _strict_json_problem(value)
    return _strict_json_problem(value) if b"NaN" in text or b"Infinity" in text else None


def _strict_json_problem(value: Any) -> str | None:
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
