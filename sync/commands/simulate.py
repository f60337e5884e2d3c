"""`espd simulate`: serve one vendor simulator, seeded with a synthetic shop, until interrupted."""

from __future__ import annotations

import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import simulators
from simulators import shops
from simulators.harness import Limits

console = Console()


def simulate(
    vendor: Annotated[str, typer.Option(help=f"one of {', '.join(simulators.VENDORS)}")],
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (0 picks a free one)")] = 0,
    shop: Annotated[str, typer.Option(help="synthetic shop size: tiny, small, medium or a count")] = "small",
    seed: Annotated[int, typer.Option(help="generator seed (same seed, same shop)")] = 7,
    limits: Annotated[bool, typer.Option(help="enforce the vendor's documented rate limits")] = True,
) -> None:
    """Serve a strict local fake of a vendor API with a synthetic shop (for demos and tests)."""
    if vendor not in simulators.VENDORS:
        raise typer.BadParameter(f"unknown vendor {vendor!r}; choose one of {', '.join(simulators.VENDORS)}")
    size: str | int = int(shop) if shop.isdigit() else shop
    with console.status(f"generating the {shop} shop (seed {seed})..."):
        data = shops.generate(size, seed=seed)
    simulator = simulators.build(vendor, data, limits=Limits(enabled=limits))
    server = simulator.serve(port)
    table = Table(title=f"{vendor} simulator")
    table.add_column("setting")
    table.add_column("value")
    table.add_row("url", server.url + simulator.base_path)
    for key, value in simulator.credentials.items():
        table.add_row(key, value)
    table.add_row("people", f"{sum(1 for _ in data.people_on(vendor)):,}")  # type: ignore[arg-type]
    console.print(table)
    console.print("serving; Ctrl-C stops")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def register(app: typer.Typer) -> None:
    app.command()(simulate)
