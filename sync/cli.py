"""The `espd` command line (typer + rich). Command groups live in sync/commands and register here."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlmodel import Session

from sync import tables
from sync.commands.common import read_config
from sync.config import Config
from sync.erasure import pending_counts
from sync.store import migrate, open_engine, row_counts

COMMAND_MODULES = (
    "sync.commands.cycle",
    "sync.commands.demo",
    "sync.commands.privacy",
    "sync.commands.simulate",
    "sync.commands.predict",
    "sync.commands.fields",
)

app = typer.Typer(
    name="espd",
    help="Pull customers from your shop and ESPs, score them locally, push the scores back as fields.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

ConfigArg = Annotated[Path, typer.Argument(help="the YAML config file", exists=False, dir_okay=False)]


@app.command()
def validate(config: ConfigArg) -> None:
    """Check a config file; exit 0 when valid, 2 on any problem (all of them are listed)."""
    loaded = read_config(config)
    console.print(
        f"[green]ok[/green] {config}: {len(loaded.connectors)} connector(s), store {_store_label(loaded)}",
        highlight=False,
    )


@app.command("init-db")
def init_db(config: ConfigArg) -> None:
    """Create or upgrade the store's schema to the current version (never drops data)."""
    loaded = read_config(config)
    engine = open_engine(loaded.store_url)
    migrate(engine)
    console.print(
        f"[green]ok[/green] store at {_store_label(loaded)} is at the current schema", highlight=False
    )


@app.command()
def status(config: ConfigArg) -> None:
    """Show connectors, their cursors, the last runs and row counts."""
    loaded = read_config(config)
    engine = open_engine(loaded.store_url)
    migrate(engine)
    with Session(engine) as session:
        cursors = {(s.connector, s.stream): s for s in session.execute(select(tables.SyncState)).scalars()}
        runs = session.execute(select(tables.Run).order_by(tables.Run.id.desc()).limit(5)).scalars().all()

    connectors = Table(title="Connectors")
    for column in ("name", "type", "enabled", "push", "stream", "cursor", "cursor saved"):
        connectors.add_column(column)
    for name, connector in loaded.connectors.items():
        for stream in connector.streams:
            state = cursors.get((name, stream))
            connectors.add_row(
                name,
                connector.type,
                "yes" if connector.enabled else "no",
                "yes" if connector.push else "no",
                stream,
                _cursor_label(state),
                state.updated_at.isoformat(timespec="seconds") if state and state.updated_at else "never",
            )
    console.print(connectors)
    _print_erasures(engine)

    history = Table(title="Last runs")
    for column in ("run", "kind", "started", "finished", "status", "counts"):
        history.add_column(column)
    for run in runs:
        history.add_row(
            str(run.id),
            run.kind,
            run.started_at.isoformat(timespec="seconds") if run.started_at else "",
            run.finished_at.isoformat(timespec="seconds") if run.finished_at else "",
            run.status,
            ", ".join(f"{k}={v}" for k, v in (run.counts or {}).items()),
        )
    if not runs:
        history.add_row("-", "", "", "", "no runs yet", "")
    console.print(history)

    counts = Table(title=f"Store ({_store_label(loaded)})")
    counts.add_column("table")
    counts.add_column("rows", justify="right")
    for table, count in row_counts(engine).items():
        counts.add_row(table, f"{count:,}")
    console.print(counts)


def _print_erasures(engine: Engine) -> None:
    """Deletions the platforms still owe (`erase: true`); shown only once any was requested."""
    pending = pending_counts(engine)
    if not pending:
        return
    table = Table(title="Erasures owed by platforms")
    table.add_column("connector")
    table.add_column("pending", justify="right")
    for connector, count in sorted(pending.items()):
        table.add_row(connector, f"{count:,}")
    console.print(table)


def _cursor_label(state: tables.SyncState | None, width: int = 60) -> str:
    """The cursor's scalar parts (watermarks, offsets), shortened: lists of seen ids are only counted."""
    if state is None or not state.cursor:
        return "-"
    parts = []
    for key, value in state.cursor.items():
        shown = (
            f"{len(value)} ids" if isinstance(value, list) else "{...}" if isinstance(value, dict) else value
        )
        parts.append(f"{key}={shown}")
    label = ", ".join(parts)
    return label if len(label) <= width else label[: width - 1] + "…"


def _store_label(config: Config) -> str:
    """The store URL without credentials, safe to print."""
    return make_url(config.store_url).render_as_string(hide_password=True)


def _register_command_modules() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_command_modules()


def main() -> None:
    app()
