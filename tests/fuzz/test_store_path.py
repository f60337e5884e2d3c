"""Hostile canonical records on their way into the store, on SQLite and on a real PostgreSQL.

The connector fuzz (test_vendor_records.py) proves every vendor record becomes a canonical record or
a counted skip. This suite starts where that one ends: records that are valid canonical records yet
hostile to a store (ids longer than their columns, a quantity past 32 bits, NaN or Infinity deep in
the raw JSON, dates in year 1 or 9999, lone surrogates and huge text in properties). Each example
writes one page of valid records with one hostile record among them, through `write_page` as a pull
does: the write must never raise, every valid record must be stored, and the hostile one must be
either stored or reported as unstorable with a reason that does not quote its email.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlmodel import Session

from connectors.base import Page
from connectors.records import EngagementEvent, Order, OrderLine, Profile
from sync import tables
from sync.config import Config
from sync.ingest import IngestPolicy, write_page
from sync.storable import minimization_for
from sync.store import session_scope
from tests.fuzz.hostile import EMAIL, values

NOW = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = IngestPolicy(raw_retention=timedelta(days=30), now=NOW)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_ids = itertools.count()

long_text = st.one_of(
    st.text(max_size=8),
    st.integers(60, 3000).map(lambda n: "x" * n),
    st.sampled_from(["é" * 200, "𝕏" * 400, "\u202e" * 300]),
)
absurd_dates = st.one_of(
    st.sampled_from(
        [
            datetime(1, 1, 1, tzinfo=UTC),
            datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
            datetime(9999, 12, 31, tzinfo=UTC),
            NOW + timedelta(days=400),
        ]
    ),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
)
big_ints = st.one_of(st.integers(0, 10), st.sampled_from([2**31 - 1, 2**31, 2**40, 2**63, 2**70]))
hostile_json = st.dictionaries(st.text(max_size=6), values, max_size=4)


@st.composite
def hostile_profile(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "kind": Profile,
        "source": draw(st.sampled_from(["kl", "k" * 70])),
        "vendor_id": draw(long_text.filter(bool)),
        "email": draw(st.sampled_from([EMAIL, "a" * 330 + "@example.com", None])),
        "external_id": draw(st.none() | long_text),
        "country": draw(st.none() | long_text),
        "timezone": draw(st.none() | long_text),
        "created_at": draw(st.none() | absurd_dates),
        "updated_at": draw(absurd_dates),
        "properties": draw(hostile_json),
        "raw": draw(hostile_json),
    }


@st.composite
def hostile_order(draw: st.DrawFn) -> dict[str, Any]:
    line = {
        "vendor_id": draw(long_text.filter(bool)),
        "product_id": draw(st.none() | long_text),
        "category": draw(st.none() | long_text),
        "quantity": draw(big_ints),
        "unit_price": draw(st.sampled_from([0.0, 1.5, 1e308])),
    }
    return {
        "kind": Order,
        "source": "kl",
        "vendor_id": draw(long_text.filter(bool)),
        "email": draw(st.sampled_from([EMAIL, None])),
        "customer_vendor_id": draw(st.none() | long_text),
        "ordered_at": draw(absurd_dates),
        "updated_at": NOW,
        "currency": "EUR",
        "total": draw(st.sampled_from([0.0, 10.0, 1e308])),
        "discount_code": draw(st.none() | long_text),
        "lines": (line,),
        "raw": draw(hostile_json),
    }


@st.composite
def hostile_event(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "kind": EngagementEvent,
        "source": "kl",
        "vendor_id": draw(long_text.filter(bool)),
        "email": EMAIL,
        "customer_vendor_id": draw(st.none() | long_text),
        "kind_": "opened",
        "occurred_at": draw(absurd_dates),
        "campaign_id": draw(st.none() | long_text),
        "url": draw(st.none() | st.integers(0, 3000).map(lambda n: "u" * n)),
        "raw": draw(hostile_json),
    }


def _build(fields: dict[str, Any]) -> Profile | Order | EngagementEvent | None:
    """The canonical record, or None when canonical validation already refuses it (the connector's skip)."""
    fields = dict(fields)
    kind = fields.pop("kind")
    if "kind_" in fields:
        fields["kind"] = fields.pop("kind_")
    if "lines" in fields:
        fields["lines"] = tuple(OrderLine(**line) for line in fields["lines"])
    try:
        return kind(**fields)
    except (ValidationError, ValueError):
        return None


def _valid_page(tag: int) -> list[Profile | Order | EngagementEvent]:
    return [
        Profile(source="kl", vendor_id=f"P{tag}", email=f"valid{tag}@example.com", updated_at=NOW),
        Order(
            source="kl",
            vendor_id=f"O{tag}",
            email=f"valid{tag}@example.com",
            ordered_at=NOW,
            updated_at=NOW,
            currency="EUR",
            total=10.0,
            lines=(OrderLine(vendor_id="1", quantity=1, unit_price=10.0),),
        ),
        EngagementEvent(
            source="kl", vendor_id=f"E{tag}", email=f"valid{tag}@example.com", kind="opened", occurred_at=NOW
        ),
    ]


def _stored(engine: Engine, table: Any, vendor_id: str) -> bool:
    with Session(engine) as session:
        return session.get(table, ("kl", vendor_id)) is not None


@FUZZ
@given(fields=st.one_of(hostile_profile(), hostile_order(), hostile_event()), position=st.integers(0, 3))
def test_a_hostile_record_is_stored_or_skipped_and_the_rest_of_its_page_is_stored(
    store_engine: Engine, fields: dict[str, Any], position: int
) -> None:
    hostile = _build(fields)
    if hostile is None:
        return
    tag = next(_ids)
    records: list[Any] = _valid_page(tag)
    records.insert(position, hostile)

    with session_scope(store_engine) as session:
        written = write_page(session, "kl", "mixed", Page(records, {"n": tag}), POLICY)

    assert _stored(store_engine, tables.Identity, f"P{tag}"), "a valid profile was lost"
    assert _stored(store_engine, tables.Order, f"O{tag}"), "a valid order was lost"
    assert _stored(store_engine, tables.Event, f"E{tag}"), "a valid event was lost"
    assert written.written + len(written.unstorable) == len(records)
    for skip in written.unstorable:
        assert skip.reason and EMAIL.lower() not in skip.reason.lower()
        assert skip.vendor_id and len(skip.vendor_id) <= 128


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (Profile(source="kl", vendor_id="v" * 200, updated_at=NOW), "vendor_id longer than 128 characters"),
        (
            Profile(source="kl", vendor_id="n", updated_at=NOW, raw={"a": [{"b": float("nan")}]}),
            "raw holds NaN or Infinity",
        ),
        (
            Order(
                source="kl",
                vendor_id="q",
                ordered_at=NOW,
                updated_at=NOW,
                currency="EUR",
                total=1.0,
                lines=(OrderLine(vendor_id="1", quantity=2**40, unit_price=1.0),),
            ),
            "order line quantity out of the integer range",
        ),
        (
            EngagementEvent(
                source="kl", vendor_id="d", kind="opened", occurred_at=datetime(1, 1, 1, tzinfo=UTC)
            ),
            "occurred_at is an implausible date",
        ),
        (EngagementEvent(source="kl", vendor_id="u", kind="opened", occurred_at=NOW, url="u" * 3000), "url"),
    ],
    ids=["long-id", "nan-raw", "int32-overflow", "year-1", "long-url"],
)
def test_each_kind_of_unstorable_record_is_named(store_engine: Engine, record: Any, reason: str) -> None:
    with session_scope(store_engine) as session:
        written = write_page(session, "kl", "mixed", Page([record], {}), POLICY)
    assert written.written == 0
    assert len(written.unstorable) == 1
    assert written.unstorable[0].reason.startswith(reason)


def test_only_the_properties_espd_reads_are_kept_and_raw_json_not_at_all_without_retention(
    store_engine: Engine,
) -> None:
    config = Config.model_validate(
        {
            "engine": {"sensitive_attributes": ["gender"]},
            "privacy": {"extra_fields": ["loyalty_tier"]},
            "store": {"raw_retention_days": 0},
        }
    )
    policy = IngestPolicy(timedelta(0), NOW, minimization=minimization_for(config))
    person = Profile(
        source="kl",
        vendor_id="m1",
        email="min@example.com",
        updated_at=NOW,
        properties={"gender": "f", "loyalty_tier": "gold", "favourite_colour": "red", "notes": "x" * 999},
        raw={"id": "m1", "phone": "+33 6 12 34 56 78"},
    )
    with session_scope(store_engine) as session:
        write_page(session, "kl", "profiles", Page([person], {}), policy)
    with Session(store_engine) as session:
        stored = session.execute(select(tables.Identity)).scalar_one()
    assert stored.properties == {"gender": "f", "loyalty_tier": "gold"}
    assert not stored.raw
