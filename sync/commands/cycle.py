"""`espd once` runs one full pull → score → push cycle and exits; `espd run` is the daemon."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sync.commands.common import read_config
from sync.config import Config
from sync.daemon import Daemon
from sync.lock import EXIT_LOCKED, AlreadyRunning, InstanceLock
from sync.logs import configure_logging, register_secrets_in
from sync.pipeline import CycleReport, run_cycle, summary
from sync.store import migrate, open_engine

console = Console()
EXIT_CYCLE_FAILED = 1


def run_one_cycle(config: Config, *, dry_run: bool = False) -> CycleReport:
    """Take the instance lock, bring the schema up to date and run one cycle."""
    register_secrets_in(config)
    with InstanceLock(config.state_dir):
        engine = open_engine(config.store_url)
        try:
            migrate(engine)
            return asyncio.run(run_cycle(config, engine, dry_run=dry_run))
        finally:
            engine.dispose()


def print_report(report: CycleReport) -> None:
    table = Table(title=f"Cycle {report.run_id}: {'ok' if report.ok else 'FAILED'}")
    for column in ("connector", "stream", "pulled", "skipped", "error"):
        table.add_column(column)
    for pull in report.pulls:
        table.add_row(pull.connector, pull.stream, f"{pull.pulled:,}", f"{pull.skipped:,}", pull.error or "")
    console.print(table)
    if report.score is not None:
        kind = f", {report.score.model_kind}" if report.score.model_kind else ""
        reused = " (unchanged input: stored scores reused)" if report.score.reused else ""
        console.print(f"scored {report.score.scored:,} customers{kind}{reused}")
    pushes = Table(title="Fields pushed")
    for column in (
        "destination",
        "customers",
        "written",
        "unchanged",
        "rejected",
        "parked",
        "new fields",
        "error",
    ):
        pushes.add_column(column)
    for push in report.pushes:
        pushes.add_row(
            push.destination,
            f"{push.candidates:,}",
            f"{push.pushed:,}",
            f"{push.unchanged:,}",
            f"{push.rejected:,}",
            f"{push.parked:,}",
            str(push.fields_created),
            push.error or "",
        )
    console.print(pushes)


def once(
    config: Annotated[Path, typer.Argument(help="the YAML config file", dir_okay=False)],
    dry_run: Annotated[bool, typer.Option(help="pull and score, but write nothing to any platform")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as one JSON line")] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "WARNING",
) -> None:
    """Run one full cycle (pull, score, push) and exit: 0 when it succeeded, 1 when a stage failed."""
    configure_logging(log_level)
    loaded = read_config(config)
    try:
        report = run_one_cycle(loaded, dry_run=dry_run)
    except AlreadyRunning as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(EXIT_LOCKED) from None
    if as_json:
        print(json.dumps(summary(report), default=str))
    else:
        print_report(report)
    if not report.ok:
        for error in report.errors:
            console.print(f"[red]error[/red] {error}", highlight=False)
        raise typer.Exit(EXIT_CYCLE_FAILED)


def run(
    config: Annotated[Path, typer.Argument(help="the YAML config file", dir_okay=False)],
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
) -> None:
    """Run the daemon: a cycle on the schedule, /healthz, /readyz and /metrics, until SIGTERM."""
    configure_logging(log_level)
    loaded = read_config(config)
    register_secrets_in(loaded)
    try:
        lock = InstanceLock(loaded.state_dir).acquire()
    except AlreadyRunning as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(EXIT_LOCKED) from None
    engine = open_engine(loaded.store_url)
    try:
        migrate(engine)
        Daemon(config, loaded, engine).serve()
    finally:
        engine.dispose()
        lock.release()


def register(app: typer.Typer) -> None:
    app.command()(once)
    app.command()(run)
