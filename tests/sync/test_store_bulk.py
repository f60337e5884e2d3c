"""The bulk write path (sync.bulk) on both stores: same rows as SQLAlchemy's row-by-row upsert, conflicts
update, repeated keys keep the last row, unstorable text is a counted rejection, and PostgreSQL's COPY
path (batches of COPY_MIN_ROWS and more) agrees with its executemany path (smaller batches)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from sync import tables
from sync.bulk import COPY_MIN_ROWS
from sync.store import migrate, open_engine, session_scope, upsert

T0 = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
ODD = "Zoë 東京 🛒 \u200b\u00a0 <tag> 'quote' \\ tab\t"


def _identities(n: int, version: int) -> list[dict[str, Any]]:
    return [
        {
            "source": "klaviyo",
            "vendor_id": f"K{i}",
            "profile_id": None,
            "email": f"p{i}@example.com" if i % 3 else None,
            "external_id": None if i % 2 else f"ext-{i}",
            "consent": "subscribed",
            "vendor_created_at": T0 - timedelta(days=i) if i % 4 else None,
            "vendor_updated_at": T0 + timedelta(minutes=version),
            "properties": {"espd_churn_risk": 0.1 * version, "note": ODD, "nul_in_json": "a\x00b"},
            "raw": {"id": f"K{i}", "v": version, "list": [1, 2.5, None, True]} if i % 5 else None,
            "raw_expires_at": T0 + timedelta(days=30),
            "pulled_at": T0,
        }
        for i in range(n)
    ]


def _reference_upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    """What espd did before sync.bulk: SQLAlchemy's INSERT … ON CONFLICT, one row at a time."""
    table = tables.Identity.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    keys = ("source", "vendor_id")
    statement = insert.on_conflict_do_update(
        index_elements=list(keys), set_={c: insert.excluded[c] for c in rows[0] if c not in keys}
    )
    for row in rows:
        session.execute(statement, row)


def _read(engine: Engine) -> list[tuple[Any, ...]]:
    with Session(engine) as session:
        rows = session.execute(select(tables.Identity).order_by(tables.Identity.vendor_id)).scalars()
        return [tuple(row.model_dump().values()) for row in rows]


@pytest.mark.parametrize("size", [COPY_MIN_ROWS - 1, COPY_MIN_ROWS * 3])
def test_bulk_rows_read_back_like_row_by_row_ones(store_url: str, size: int, tmp_path: Path) -> None:
    engines = []
    for name in ("bulk", "reference"):
        url = store_url if name == "bulk" else f"sqlite:///{tmp_path / 'reference.sqlite'}"
        engine = open_engine(url)
        migrate(engine)
        engines.append(engine)
    bulk, reference = engines
    with session_scope(bulk) as session:
        written = upsert(session, tables.Identity, _identities(size, 1))
    with session_scope(reference) as session:
        _reference_upsert(session, _identities(size, 1))
    assert written.written == size and not written.rejected
    assert _read(bulk) == _read(reference)
    for engine in engines:
        engine.dispose()


def test_conflicts_update_and_a_repeated_key_keeps_its_last_row(store_engine: Engine) -> None:
    first = _identities(COPY_MIN_ROWS * 2, 1)
    with session_scope(store_engine) as session:
        upsert(session, tables.Identity, first)
    again = _identities(COPY_MIN_ROWS * 2, 2)
    repeated = {**again[7], "consent": "unsubscribed"}
    with session_scope(store_engine) as session:
        result = upsert(session, tables.Identity, [*again, repeated])
    assert result.written == len(again)
    with Session(store_engine) as session:
        rows = {r.vendor_id: r for r in session.execute(select(tables.Identity)).scalars()}
    assert len(rows) == len(first)
    assert rows["K7"].consent == "unsubscribed"
    assert rows["K1"].properties == again[1]["properties"]
    assert rows["K1"].vendor_updated_at == T0 + timedelta(minutes=2)


def test_small_and_copied_batches_agree_on_postgresql(postgres_url: str) -> None:
    engine = open_engine(postgres_url)
    migrate(engine)
    rows = _identities(COPY_MIN_ROWS * 2, 3)
    with session_scope(engine) as session:
        upsert(session, tables.Identity, rows[:COPY_MIN_ROWS])  # COPY
        upsert(session, tables.Identity, rows[COPY_MIN_ROWS:])  # COPY again, same transaction
        upsert(session, tables.Identity, rows[:5])  # executemany over existing rows
    with Session(engine) as session:
        stored = {r.vendor_id: r for r in session.execute(select(tables.Identity)).scalars()}
    engine.dispose()
    assert len(stored) == len(rows)
    assert stored["K10"].properties == rows[10]["properties"]
    assert stored["K70"].raw == rows[70]["raw"] and stored["K70"].vendor_created_at == T0 - timedelta(days=70)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("bad\x00id", "NUL character"), ("bad\ud800id", "not valid Unicode (lone surrogate)")],
)
def test_unstorable_text_is_a_counted_rejection_and_the_rest_is_written(
    store_engine: Engine, text: str, reason: str
) -> None:
    rows = _identities(COPY_MIN_ROWS + 6, 1)
    rows[3] = {**rows[3], "external_id": text}
    rows[9] = {**rows[9], "email": text}
    with session_scope(store_engine) as session:
        result = upsert(session, tables.Identity, rows)
    assert result.written == len(rows) - 2
    assert result.rejected == {f"identities.external_id: {reason}": 1, f"identities.email: {reason}": 1}
    with Session(store_engine) as session:
        ids = set(session.execute(select(tables.Identity.vendor_id)).scalars())
    assert "K3" not in ids and "K9" not in ids and len(ids) == len(rows) - 2


def test_fill_only_columns_keep_what_the_row_already_has(store_engine: Engine) -> None:
    def profiles(country: str | None, timezone: str) -> list[dict[str, Any]]:
        return [{"email": "ann@example.com", "country": country, "timezone": timezone}]

    columns = ("country", "timezone")
    for country, timezone in ((None, "Europe/Paris"), ("FR", "Asia/Tokyo")):
        with session_scope(store_engine) as session:
            upsert(
                session,
                tables.Profile,
                profiles(country, timezone),
                update_columns=columns,
                conflict_columns=("email",),
                fill_only=columns,
            )
    with Session(store_engine) as session:
        profile = session.execute(select(tables.Profile)).scalar_one()
    assert (profile.country, profile.timezone) == ("FR", "Europe/Paris")


@pytest.mark.parametrize(
    "value",
    [
        {"big": 10**30, "neg": -(2**63), "float": 0.1, "list": [1, [2.5, None, True]], "text": ODD},
        {"surrogate": "bad\ud800", "escaped": "a\x00b\n\u2028"},  # pydantic-core refuses the first
    ],
)
def test_json_columns_read_back_the_values_written(store_engine: Engine, value: dict[str, Any]) -> None:
    row = {**_identities(1, 1)[0], "properties": value, "raw": value}
    with session_scope(store_engine) as session:
        upsert(session, tables.Identity, [row])
    with Session(store_engine) as session:
        stored = session.execute(select(tables.Identity)).scalars().one()
    assert stored.properties == value and stored.raw == value
