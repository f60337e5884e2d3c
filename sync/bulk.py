"""Bulk upserts: the store's write path for pages of hundreds or thousands of rows.

SQLAlchemy's executemany spent most of ingest time building a parameter dict per row and running the
generic type processors on every value (py-spy on bench/pull_throughput.py). Here each statement shape
(table, conflict key, updated columns) is written once as the backend's SQL, and rows become tuples
through per-column converters chosen once (UTC timestamps and JSON converted directly). Then:

- SQLite: one DB-API executemany of `INSERT … VALUES (?, …) ON CONFLICT … DO UPDATE`;
- PostgreSQL: a batch of `COPY_MIN_ROWS` rows or more is COPYed into a temporary staging table and
  merged with one `INSERT … SELECT … ON CONFLICT`; a smaller one is an executemany (a COPY's extra
  statements cost more than they save on a few rows).

Rows repeating a key keep the last one, as sequential upserts would (PostgreSQL refuses to update one
row twice in one statement). A row whose text cannot be stored (a NUL character, which PostgreSQL
refuses, or a lone surrogate, which no UTF-8 store can hold) is dropped and counted by reason on both
backends, so one hostile record never fails the page it came in.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Table
from sqlalchemy.engine import Dialect
from sqlmodel import Session

from sync.tables import UtcDateTime

COPY_MIN_ROWS = 64
Converter = Callable[[Any], Any]


@dataclass
class BulkWrite:
    """Rows written, and rows refused with the reason (`table.column: problem`)."""

    written: int = 0
    rejected: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _Shape:
    table: str
    columns: tuple[str, ...]
    keys: tuple[str, ...]
    converters: tuple[Converter | None, ...]
    text_columns: tuple[int, ...]  # positions of the columns whose str values go to the store as text
    values_sql: str  # INSERT … VALUES (params) ON CONFLICT …
    merge_sql: str  # INSERT … SELECT FROM staging ON CONFLICT … (PostgreSQL)
    stage: str


def bulk_upsert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    updates: Sequence[str],
    fill_only: Sequence[str] = (),
) -> BulkWrite:
    """Insert `rows`; on a key conflict set `updates` from the new row, and `fill_only` only where empty.

    Every row must have the same keys (its first row names the columns).
    """
    result = BulkWrite()
    if not rows:
        return result
    dialect = session.get_bind().dialect
    shape = _shape(dialect, table, tuple(rows[0]), tuple(keys), tuple(updates), tuple(fill_only))
    tuples = _tuples(shape, rows, result.rejected)
    if not tuples:
        return result
    connection = session.connection()
    if dialect.name == "postgresql" and len(tuples) >= COPY_MIN_ROWS:
        _copy_merge(connection.connection.driver_connection, shape, tuples)
    else:
        connection.exec_driver_sql(shape.values_sql, tuples)
    result.written = len(tuples)
    return result


def _tuples(shape: _Shape, rows: Sequence[dict[str, Any]], rejected: Counter[str]) -> list[tuple[Any, ...]]:
    """Converted rows, the last of each key kept, unstorable ones counted in `rejected`."""
    # A generated key (an autoincrement id left out of the rows) cannot repeat: nothing to fold.
    key_positions = (
        [shape.columns.index(k) for k in shape.keys] if set(shape.keys) <= set(shape.columns) else []
    )
    kept: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    columns, converters = shape.columns, shape.converters
    for row in rows:
        values = tuple(
            convert(row[name]) if convert is not None else row[name]
            for name, convert in zip(columns, converters, strict=True)
        )
        problem = _unstorable(values, shape.text_columns)
        if problem is not None:
            rejected[f"{shape.table}.{columns[problem[0]]}: {problem[1]}"] += 1
            continue
        key = tuple(values[i] for i in key_positions) if key_positions else (len(kept),)
        kept.pop(key, None)  # re-insert so the last occurrence also keeps the last position
        kept[key] = values
    return list(kept.values())


def _unstorable(values: tuple[Any, ...], positions: tuple[int, ...]) -> tuple[int, str] | None:
    for position in positions:
        value = values[position]
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            return position, "NUL character"
        if value.isascii():
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return position, "not valid Unicode (lone surrogate)"
    return None


def _copy_merge(driver_connection: Any, shape: _Shape, tuples: list[tuple[Any, ...]]) -> None:
    """COPY into a staging table (dropped after the merge, or at the latest with the transaction),
    then one merging INSERT."""
    names = ", ".join(f'"{c}"' for c in shape.columns)
    with driver_connection.cursor() as cursor:
        # Only the copied columns, with their types and without the target's NOT NULL constraints
        # (a key the target generates, like profiles.id, is not among them).
        cursor.execute(
            f'CREATE TEMP TABLE "{shape.stage}" ON COMMIT DROP'
            f' AS SELECT {names} FROM "{shape.table}" WITH NO DATA'
        )
        with cursor.copy(f'COPY "{shape.stage}" ({names}) FROM STDIN') as copy:
            for values in tuples:
                copy.write_row(values)
        cursor.execute(shape.merge_sql)
        cursor.execute(f'DROP TABLE "{shape.stage}"')


@functools.lru_cache(maxsize=256)
def _shape(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    updates: tuple[str, ...],
    fill_only: tuple[str, ...],
) -> _Shape:
    """The SQL and converters of one statement shape, built once per backend."""
    quote = dialect.identifier_preparer.quote
    name = quote(table.name)
    listed = ", ".join(quote(c) for c in columns)
    target = ", ".join(quote(k) for k in keys)
    sets = [f"{quote(c)} = excluded.{quote(c)}" for c in updates if c not in fill_only]
    sets += [f"{quote(c)} = COALESCE({name}.{quote(c)}, excluded.{quote(c)})" for c in fill_only]
    action = f"DO UPDATE SET {', '.join(sets)}" if sets else "DO NOTHING"
    conflict = f"ON CONFLICT ({target}) {action}"
    marker = "?" if dialect.name == "sqlite" else "%s"
    params = ", ".join(marker for _ in columns)
    stage = f"espd_stage_{table.name}"
    return _Shape(
        table=table.name,
        columns=columns,
        keys=keys,
        converters=tuple(_converter(table.c[c].type, dialect) for c in columns),
        text_columns=tuple(
            i for i, c in enumerate(columns) if not isinstance(table.c[c].type, (JSON, UtcDateTime))
        ),
        values_sql=f"INSERT INTO {name} ({listed}) VALUES ({params}) {conflict}",
        merge_sql=f'INSERT INTO {name} ({listed}) SELECT {listed} FROM "{stage}" {conflict}',
        stage=stage,
    )


def _converter(column_type: Any, dialect: Dialect) -> Converter | None:
    """What turns a Python value into what the driver takes for this column (None: as it is)."""
    if isinstance(column_type, UtcDateTime):
        return _utc_sqlite_text if dialect.name == "sqlite" else _utc
    if isinstance(column_type, JSON):
        return _json_text
    return column_type.bind_processor(dialect)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; use timezone-aware UTC")
    return value.astimezone(UTC)


def _utc_sqlite_text(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite DATETIME storage format, naive UTC, so both write paths read back alike."""
    aware = _utc(value)
    return None if aware is None else aware.replace(tzinfo=None).isoformat(" ", "microseconds")


def _json_text(value: Any) -> str | None:
    """JSON as text (what SQLAlchemy stores on SQLite; PostgreSQL's json type parses it from text)."""
    return None if value is None else json.dumps(value)
