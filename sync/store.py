"""The store: one SQLAlchemy engine, schema migrations, and bulk upserts that work on both backends.

SQLite (the default) runs in WAL mode so the health server can read while a cycle writes; its file
and the -wal/-shm companions are created 0600 inside a 0700 state directory because they hold
customer data. PostgreSQL is used by URL. Writes are batched `INSERT … ON CONFLICT DO UPDATE` so
re-reading a page after a crash is harmless.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, Table, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

from sync import tables

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
log = logging.getLogger("espd.store")


def open_engine(url: str) -> Engine:
    """Create the engine for `url`, preparing a private SQLite file where that is the backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _prepare_sqlite_file(Path(parsed.database))
    engine = create_engine(url, pool_pre_ping=True, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _prepare_sqlite_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = stat.S_IMODE(path.parent.stat().st_mode)
    if mode & 0o077:  # an operator's directory: say so rather than change its mode behind their back
        log.warning(
            "event=state_dir_not_private path=%s mode=%o: other users may list it; chmod 700 it",
            path.parent,
            mode,
        )
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    for companion in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if companion.exists():
            os.chmod(companion, 0o600)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    previous = os.umask(0o077)  # SQLite creates -wal/-shm on first write: keep them private
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA secure_delete=ON")  # an erased person's bytes must not linger in free pages
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
    finally:
        os.umask(previous)


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; an upgrade never drops data (migrations are reviewed)."""
    previous = os.umask(0o077)
    try:
        command.upgrade(alembic_config(engine), revision)
    finally:
        os.umask(previous)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose work commits together or not at all."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def upsert(
    session: Session,
    table: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    update_columns: Iterable[str] | None = None,
    conflict_columns: Iterable[str] | None = None,
) -> int:
    """Insert `rows`, updating the given columns (default: every non-key column) on conflict.

    The conflict target is the primary key unless `conflict_columns` names a unique constraint.
    Every row must have the same keys. One single-row statement is executed with all the rows
    (executemany): it is compiled once and cached, where a multi-row VALUES statement was compiled
    anew for every page and cost ~80 % of ingest time (bench/pull_throughput.py).
    """
    if not rows:
        return 0
    sa_table = table.__table__  # type: ignore[attr-defined]
    keys = list(conflict_columns) if conflict_columns else [c.name for c in sa_table.primary_key.columns]
    updates = list(update_columns) if update_columns is not None else [c for c in rows[0] if c not in keys]
    dialect = session.get_bind().dialect.name
    session.execute(_upsert_statement(dialect, sa_table, tuple(keys), tuple(updates)), list(rows))
    return len(rows)


@functools.lru_cache(maxsize=256)
def _upsert_statement(dialect: str, table: Table, keys: tuple[str, ...], updates: tuple[str, ...]) -> Any:
    """Built once per shape: constructing `excluded` anew for every page cost ~10 % of ingest time."""
    statement = dialect_insert(dialect)(table)
    if not updates:
        return statement.on_conflict_do_nothing(index_elements=list(keys))
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={c: statement.excluded[c] for c in updates}
    )


def dialect_insert(dialect: str) -> Any:
    """The backend's INSERT construct, which knows ON CONFLICT (both SQLite and PostgreSQL have it)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table, for `espd status`."""
    counts = {}
    with Session(engine) as session:
        for table in (
            tables.Profile,
            tables.Identity,
            tables.Order,
            tables.OrderLine,
            tables.Event,
            tables.Score,
            tables.PushLedger,
            tables.Model,
            tables.Run,
        ):
            counts[table.__tablename__] = session.execute(
                select(func.count()).select_from(table)
            ).scalar_one()
    return counts
