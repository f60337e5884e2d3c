"""`espd demo`: a real cycle on the embedded default, with no keys and no network.

It generates a synthetic shop, serves it through the four built-in vendor simulators on 127.0.0.1,
writes a config pointing espd at them (SQLite in the state directory), runs one full cycle and shows
what landed where. The simulators' keys are fake and are passed through environment variables, the
way a real deployment passes its secrets.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlmodel import Session

import simulators
from simulators import shops
from simulators.harness import Limits, Simulator
from sync import tables
from sync.commands.common import read_config
from sync.commands.cycle import EXIT_CYCLE_FAILED, print_report, run_one_cycle
from sync.dashboard.serve import serve_dashboard
from sync.logs import configure_logging
from sync.store import open_engine

console = Console()

CONFIG_TEMPLATE = """\
# Written by `espd demo`: espd against the built-in simulators, SQLite in {state_dir}.
state_dir: {state_dir}
connectors:
  shopify:
    type: shopify
    base_url: {shopify_url}
    shop: {shopify_shop}
    access_token: ${{ESPD_DEMO_SHOPIFY_TOKEN:-}}
    push: true
  klaviyo:
    type: klaviyo
    base_url: {klaviyo_url}
    api_key: ${{ESPD_DEMO_KLAVIYO_KEY:-}}
    push: true
  mailchimp:
    type: mailchimp
    base_url: {mailchimp_url}
    api_key: ${{ESPD_DEMO_MAILCHIMP_KEY:-}}
    push: true
  brevo:
    type: brevo
    base_url: {brevo_url}
    api_key: ${{ESPD_DEMO_BREVO_KEY:-}}
    push: true
engine:
  min_buyers: 200
"""

SECRET_ENV = {
    "shopify": ("ESPD_DEMO_SHOPIFY_TOKEN", "access_token"),
    "klaviyo": ("ESPD_DEMO_KLAVIYO_KEY", "api_key"),
    "mailchimp": ("ESPD_DEMO_MAILCHIMP_KEY", "api_key"),
    "brevo": ("ESPD_DEMO_BREVO_KEY", "api_key"),
}


def write_demo_config(state_dir: Path, served: dict[str, tuple[Simulator, str]]) -> Path:
    """Write the demo config and export the simulators' fake keys for it; return its path."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for vendor, (simulator, _) in served.items():
        variable, credential = SECRET_ENV[vendor]
        os.environ[variable] = simulator.credentials[credential]
    path = state_dir / "demo.yaml"
    path.write_text(
        CONFIG_TEMPLATE.format(
            state_dir=state_dir,
            shopify_shop=served["shopify"][0].credentials["shop"],
            **{f"{vendor}_url": url for vendor, (_, url) in served.items()},
        ),
        encoding="utf-8",
    )
    return path


def _examples(state_dir_url: str, n: int) -> Table:
    """A few customers with what espd computed for them (no emails: ids only)."""
    engine = open_engine(state_dir_url)
    table = Table(title="Example customers")
    for column in ("customer", "platforms", "churn risk", "churn band", "CLV 365", "tier", "next order"):
        table.add_column(column)
    with Session(engine) as session:
        scores: dict[int, dict[str, object]] = {}
        for row in session.execute(select(tables.Score)).scalars():
            scores.setdefault(row.profile_id, {})[row.output] = row.value_text or row.value_num
        platforms: dict[int, set[str]] = {}
        for source, pid in session.execute(select(tables.Identity.source, tables.Identity.profile_id)):
            platforms.setdefault(pid, set()).add(source)
    engine.dispose()
    ranked = sorted(scores.items(), key=lambda item: -float(item[1].get("clv_365") or 0))
    for pid, values in ranked[:: max(1, len(ranked) // n)][:n]:
        table.add_row(
            str(pid),
            ", ".join(sorted(platforms.get(pid, set()))),
            f"{float(values.get('churn_risk') or 0):.2f}",
            str(values.get("churn_band", "")),
            f"{float(values.get('clv_365') or 0):,.2f}",
            str(values.get("clv_tier", "")),
            str(values.get("next_order_date", "")),
        )
    return table


def demo(
    state_dir: Annotated[Path, typer.Option(help="where the demo keeps its SQLite store and config")] = Path(
        "state/demo"
    ),
    shop: Annotated[str, typer.Option(help="synthetic shop size: tiny, small or a count")] = "small",
    seed: Annotated[int, typer.Option(help="generator seed")] = 7,
    limit_scale: Annotated[
        float, typer.Option(help="multiply the vendors' documented rate limits (1 = as documented)")
    ] = 1.0,
    serve: Annotated[
        bool, typer.Option(help="after the cycle, serve the dashboard on 127.0.0.1 until Ctrl-C")
    ] = False,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="dashboard port with --serve (0: any free one)")
    ] = 8787,
) -> None:
    """Run one real cycle against built-in simulators of Shopify, Klaviyo, Mailchimp and Brevo."""
    configure_logging("WARNING")
    size: str | int = int(shop) if shop.isdigit() else shop
    with console.status(f"generating the {shop} synthetic shop..."):
        data = shops.generate(size, seed=seed)
    with ExitStack() as stack:
        served: dict[str, tuple[Simulator, str]] = {}
        for vendor in simulators.VENDORS:
            simulator = simulators.build(vendor, data, limits=Limits(scale=limit_scale))
            server = simulator.serve()
            stack.callback(server.stop)
            served[vendor] = (simulator, simulator.base_url(server))
        config = read_config(write_demo_config(state_dir.resolve(), served))
        console.print(f"simulators up; running one cycle with {config.store_url} ...")
        report = run_one_cycle(config)
    print_report(report)
    console.print(_examples(config.store_url, 5))
    console.print(f"config: {state_dir / 'demo.yaml'}   status: espd status {state_dir / 'demo.yaml'}")
    if serve:
        serve_dashboard(
            config, "127.0.0.1", port, lambda url: print(f"dashboard: {url}  (Ctrl-C to stop)", flush=True)
        )
    if not report.ok:
        raise typer.Exit(EXIT_CYCLE_FAILED)


def register(app: typer.Typer) -> None:
    app.command()(demo)
