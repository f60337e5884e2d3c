"""`espd fields`, `espd field-guide`, `espd explain`, `espd uplift` and `espd audit`.

What a marketer asks about the fields: which ones land where and under which names, what one
customer's values are and why, whether campaigns beat the control group, and how segments moved and
are composed. Customers are named by store profile id or platform id only, never by email.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select
from sqlmodel import Session

from engine.control_group import control_assignment, conversions, uplift
from sync import tables
from sync.audit import load_audit
from sync.commands.common import read_config
from sync.field_table import STAMPS
from sync.fields import available_outputs, field_specs, outputs_for, render, rule_pairs
from sync.guide import GUIDE_PATH, example_text, render_guide, vendor_names, vendor_type
from sync.store import migrate, open_engine

console = Console()
ConfigArg = Annotated[Path, typer.Argument(help="the YAML config file", dir_okay=False)]


def fields(
    config: ConfigArg,
    destination: Annotated[str, typer.Option(help="connector name whose fields to list")],
) -> None:
    """The fields espd writes to one destination: names as the platform shows them, types, examples."""
    loaded = read_config(config)
    if destination not in loaded.connectors:
        console.print(f"[red]error[/red] no connector named {destination!r}", highlight=False)
        raise typer.Exit(2)
    kind = loaded.connectors[destination].type
    chosen = outputs_for(loaded, destination)
    outputs = {loaded.fields.prefix + f.output: f for f in (*chosen, *STAMPS)}
    table = Table(title=f"Fields written to {destination} ({kind})")
    for column in ("field", f"{kind} name", f"{kind} type", "unit", "example", "meaning"):
        table.add_column(column)
    specs = field_specs(loaded.fields.prefix, chosen)
    names = vendor_names(kind, specs)
    for spec in specs:
        row = outputs.get(spec.name)
        example = "" if row is None else example_text(row)
        table.add_row(
            spec.name,
            names[spec.name],
            vendor_type(kind, spec),
            row.unit if row else "",
            example,
            spec.description,
        )
    console.print(table)


def field_guide(
    output: Annotated[Path, typer.Option(help="where to write the guide")] = GUIDE_PATH,
) -> None:
    """Regenerate docs/fields.md from the field table."""
    output.write_text(render_guide(), encoding="utf-8")
    console.print(f"[green]ok[/green] wrote {output}", highlight=False)


def _profile_id(engine: Engine, customer: str) -> int | None:
    """A store profile id, or the profile behind a platform's id for the customer."""
    with Session(engine) as session:
        if customer.isdigit() and session.get(tables.Profile, int(customer)) is not None:
            return int(customer)
        found = session.execute(
            select(tables.Identity.profile_id).where(tables.Identity.vendor_id == customer).limit(1)
        ).scalar_one_or_none()
        return found


def explain(
    customer: Annotated[str, typer.Argument(help="store profile id or a platform's id for the customer")],
    config: ConfigArg,
) -> None:
    """One customer's values, the model behind each and the reasons espd has for them."""
    loaded = read_config(config)
    engine = open_engine(loaded.store_url)
    migrate(engine)
    profile_id = _profile_id(engine, customer)
    if profile_id is None:
        console.print(f"[red]error[/red] no customer with id {customer!r}", highlight=False)
        raise typer.Exit(1)
    with Session(engine) as session:
        rows = {
            r.output: r
            for r in session.execute(
                select(tables.Score).where(tables.Score.profile_id == profile_id)
            ).scalars()
        }
    table = Table(title=f"Customer {profile_id}")
    for column in ("field", "value", "model", "reasons"):
        table.add_column(column)
    for field in available_outputs(rule_pairs(loaded)):
        row = rows.get(field.output)
        stored = None if row is None else (row.value_text if row.value_text is not None else row.value_num)
        table.add_row(
            loaded.fields.prefix + field.output,
            str(render(field, stored)),
            row.model_kind if row else "not scored",
            "; ".join(row.reasons or []) if row else "",
        )
    console.print(table)
    engine.dispose()


def uplift_command(
    config: ConfigArg,
    days: Annotated[int, typer.Option(help="conversion window: the last N days")] = 30,
    confidence: Annotated[float, typer.Option(help="confidence level of the interval")] = 0.95,
) -> None:
    """Conversion of treated vs control customers over the last N days, with a confidence interval."""
    loaded = read_config(config)
    share, salt = loaded.segments.control_group.share, loaded.segments.control_group.salt
    if share <= 0:
        console.print("[red]error[/red] segments.control_group.share is 0: there is no control group")
        raise typer.Exit(2)
    engine = open_engine(loaded.store_url)
    migrate(engine)
    with engine.connect() as connection:
        ids = pd.Series(connection.execute(select(tables.Profile.id)).scalars().all(), dtype="int64")
        orders = pd.DataFrame(
            connection.execute(
                select(tables.Order.profile_id, tables.Order.ordered_at).where(
                    tables.Order.profile_id.is_not(None), tables.Order.cancelled_at.is_(None)
                )
            ).all(),
            columns=["customer_id", "ordered_at"],
        )
    engine.dispose()
    end = pd.Timestamp(datetime.now(UTC))
    orders = orders.assign(
        customer_id=orders["customer_id"].astype(str),
        ordered_at=pd.to_datetime(orders["ordered_at"], utc=True),
    )
    assignment = control_assignment(ids.astype(str), share, salt)
    result = uplift(conversions(assignment, orders, end - timedelta(days=days), end), confidence=confidence)
    row = result.iloc[0]
    table = Table(title=f"Uplift over the last {days} days (control share {share:.0%}, salt {salt!r})")
    for column in ("group", "customers", "converted", "rate"):
        table.add_column(column, justify="right")
    table.add_row(
        "treated", f"{row.n_treated:.0f}", f"{row.converted_treated:.0f}", f"{row.rate_treated:.2%}"
    )
    table.add_row(
        "control", f"{row.n_control:.0f}", f"{row.converted_control:.0f}", f"{row.rate_control:.2%}"
    )
    console.print(table)
    console.print(
        f"uplift {row.uplift * 100:+.2f} pp, {confidence:.0%} CI [{row.ci_low * 100:+.2f}, "
        f"{row.ci_high * 100:+.2f}] pp (Newcombe), p = {row.p_value:.3g}",
        highlight=False,
    )


def audit(
    config: ConfigArg,
    run: Annotated[int | None, typer.Option(help="run id; default: the latest audited run")] = None,
) -> None:
    """Segment sizes and drift since the previous run, and flagged composition over sensitive attributes."""
    loaded = read_config(config)
    engine = open_engine(loaded.store_url)
    migrate(engine)
    found = load_audit(engine, run)
    engine.dispose()
    if found is None:
        console.print("no segment audit yet: run a cycle first")
        raise typer.Exit(1)
    sizes = Table(title=f"Segments of run {found.run_id} ({found.customers} customers)")
    for column in ("field", "segment", "size", "previous", "change", "share pp change", "status"):
        sizes.add_column(column)
    for r in found.sizes or []:
        sizes.add_row(
            r["segment_field"],
            r["segment"],
            f"{r['size']:.0f}",
            f"{r['previous_size']:.0f}",
            f"{r['change']:+.0f}",
            f"{r['share_change_pp']:+.2f}",
            r["status"],
        )
    console.print(sizes)
    console.print(
        "stability (PSI): " + ", ".join(f"{k}={v:.3f}" for k, v in (found.stability or {}).items()),
        highlight=False,
    )
    flagged = [r for r in found.composition or [] if r["flag"]]
    mix = Table(title=f"Composition flags over sensitive attributes ({len(flagged)})")
    for column in ("field", "segment", "attribute", "value", "in segment", "overall", "ratio", "flag"):
        mix.add_column(column)
    for r in flagged:
        mix.add_row(
            r["segment_field"],
            r["segment"],
            r["attribute"],
            str(r["value"]),
            f"{r['share_in_segment']:.1%}",
            f"{r['share_overall']:.1%}",
            f"{r['representation']:.2f}",
            r["flag"],
        )
    console.print(mix)


def register(app: typer.Typer) -> None:
    app.command()(fields)
    app.command("field-guide")(field_guide)
    app.command()(explain)
    app.command("uplift")(uplift_command)
    app.command()(audit)
