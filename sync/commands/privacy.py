"""`espd forget`, `espd export` and `espd purge`: erasure, access requests and retention."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sync.commands.common import read_config
from sync.erasure import enqueue, erasing_connectors, propagate
from sync.privacy import erasure_key, export, forget, purge, write_private
from sync.store import migrate, open_engine

console = Console()
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="the YAML config file", dir_okay=False)]


def forget_command(
    email: Annotated[str, typer.Argument(help="the person's email address")], config: ConfigOption
) -> None:
    """Erase one person from the store and remember only a keyed hash, so no pull brings them back;
    then ask every platform configured with `erase: true` to delete them too (what cannot be done
    now stays queued, sealed, and the daemon retries it every cycle)."""
    loaded = read_config(config)
    engine = open_engine(loaded.store_url)
    migrate(engine)
    key = erasure_key(loaded.state_dir)
    try:
        # Queued before the local delete: a crash in between leaves a request that re-running finishes.
        hashed = enqueue(engine, key, email, erasing_connectors(loaded), reason="operator request")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="EMAIL") from None
    deleted = forget(engine, key, email, reason="operator request")
    console.print(
        "erased: " + ", ".join(f"{table}={n}" for table, n in deleted.items() if n) or "erased (no rows held)"
    )
    for report in asyncio.run(propagate(loaded, engine, key, only=hashed)):
        settled = {"erased": report.erased, "not found": report.not_found, "refused": report.refused}
        outcome = ", ".join(f"{label}" for label, n in settled.items() if n) or "still pending"
        note = f" ({report.error}; retried by the daemon)" if report.error else ""
        console.print(f"{report.connector}: {outcome}{note}", highlight=False)


def export_command(
    email: Annotated[str, typer.Argument(help="the person's email address")],
    config: ConfigOption,
    out: Annotated[Path, typer.Option(help="where to write the JSON document", dir_okay=False)],
) -> None:
    """Write everything espd holds about one person to a JSON file (a data access request)."""
    loaded = read_config(config)
    engine = open_engine(loaded.store_url)
    migrate(engine)
    document = export(engine, email)
    write_private(out, json.dumps(document, indent=2, default=str))
    console.print(f"wrote {out}" if document["found"] else f"nothing held; wrote {out}")


def purge_command(config: ConfigOption) -> None:
    """Drop raw vendor JSON older than store.raw_retention_days."""
    loaded = read_config(config)
    engine = open_engine(loaded.store_url)
    migrate(engine)
    purged = purge(engine)
    console.print("purged raw JSON: " + ", ".join(f"{table}={n}" for table, n in purged.items()))


def register(app: typer.Typer) -> None:
    app.command("forget")(forget_command)
    app.command("export")(export_command)
    app.command("purge")(purge_command)
