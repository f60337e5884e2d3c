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
import operator
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pydantic_core
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
    pick: Callable[[dict[str, Any]], tuple[Any, ...]]  # a row's values, in `columns` order
    conversions: tuple[tuple[int, Converter], ...]  # (position, converter) of the columns converted
    key: Callable[[tuple[Any, ...]], Any] | None  # a converted row's conflict key (None: generated)
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
    """Converted rows, the last of each key kept, unstorable ones counted in `rejected`.

    Column by column rather than row by row: picking, converting and checking a whole column runs
    in C loops, where a per-row generator over every column was a third of the write path. The
    checks are the per-row ones, run row by row only when some text column fails as a whole.
    """
    columns: list[Sequence[Any]] = list(zip(*map(shape.pick, rows), strict=True))
    for position, convert in shape.conversions:
        columns[position] = _converted(convert, columns[position])
    tuples = list(zip(*columns, strict=True))
    if not all(_storable_column(columns[i]) for i in shape.text_columns):
        tuples = _storable_rows(shape, tuples, rejected)
    if shape.key is None:  # a generated key (an autoincrement id left out of the rows) cannot repeat
        return tuples
    kept = {shape.key(values): values for values in tuples}
    if len(kept) == len(tuples):
        return tuples
    kept = {}
    for values in tuples:  # rare: a repeated key, which must also keep the last one's position
        key = shape.key(values)
        kept.pop(key, None)
        kept[key] = values
    return list(kept.values())


def _converted(convert: Converter, values: Sequence[Any]) -> list[Any]:
    """`convert` on each value of a column, each distinct timestamp once: expiry and pull times repeat
    one value on every row, and formatting a timestamp as SQLite text was a tenth of the write path."""
    if convert is not _utc_sqlite_text:
        return list(map(convert, values))
    text = {value: convert(value) for value in dict.fromkeys(values)}
    return list(map(text.__getitem__, values))


def _storable_column(values: Sequence[Any]) -> bool:
    """Whether every text value of a column can be stored (the whole column checked at once)."""
    joined = "".join([v for v in values if isinstance(v, str)])
    return "\x00" not in joined and (joined.isascii() or _encodable(joined))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable_rows(
    shape: _Shape, tuples: list[tuple[Any, ...]], rejected: Counter[str]
) -> list[tuple[Any, ...]]:
    kept = []
    for values in tuples:
        problem = _unstorable(values, shape.text_columns)
        if problem is None:
            kept.append(values)
        else:
            rejected[f"{shape.table}.{shape.columns[problem[0]]}: {problem[1]}"] += 1
    return kept


def _unstorable(values: tuple[Any, ...], positions: tuple[int, ...]) -> tuple[int, str] | None:
    for position in positions:
        value = values[position]
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            return position, "NUL character"
        if not (value.isascii() or _encodable(value)):
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
    converters = ((i, _converter(table.c[c].type, dialect)) for i, c in enumerate(columns))
    return _Shape(
        table=table.name,
        columns=columns,
        keys=keys,
        pick=_getter(columns),
        conversions=tuple((i, convert) for i, convert in converters if convert is not None),
        key=_getter([columns.index(k) for k in keys]) if set(keys) <= set(columns) else None,
        text_columns=tuple(
            i for i, c in enumerate(columns) if not isinstance(table.c[c].type, (JSON, UtcDateTime))
        ),
        values_sql=f"INSERT INTO {name} ({listed}) VALUES ({params}) {conflict}",
        merge_sql=f'INSERT INTO {name} ({listed}) SELECT {listed} FROM "{stage}" {conflict}',
        stage=stage,
    )


def _getter(items: Sequence[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """`operator.itemgetter` that returns a tuple for one item too."""
    if len(items) == 1:
        only = items[0]
        return lambda container: (container[only],)
    return operator.itemgetter(*items)


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
    if value is None:
        return None
    if value.tzinfo is not UTC:  # canonical records already hold UTC: most values skip the conversion
        value = _utc(value)  # type: ignore[assignment]
    return value.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"


def _json_text(value: Any) -> str | None:
    """JSON as text (what SQLAlchemy stores on SQLite; PostgreSQL's json type parses it from text).

    Written by pydantic-core, in a quarter of `json.dumps`'s time on the recorded raw vendor JSON
    (two encodings per stored record were a sixth of the write path); NaN and Infinity are written as
    `json.dumps` writes them, and what pydantic-core refuses (a lone surrogate) by `json.dumps`.
    """
    if value is None:
        return None
    try:
        return pydantic_core.to_json(value, inf_nan_mode="constants").decode()
    except ValueError:  # PydanticSerializationError
        return json.dumps(value)
