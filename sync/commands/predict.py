"""`espd predict` and `espd backtest`: the engine on a plain orders CSV, with no connectors at all.

The CSV has columns customer_id, order_id, ordered_at, amount and optionally quantity, product_id,
category, discount (one row per order, or per line with the order_id repeated). Malformed rows are
skipped and counted; a missing column or an unreadable file exits with code 2 and says what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.backtest import BacktestResult, backtest
from engine.frames import FrameError, ShopFrames, frames_from_order_rows, history_at, to_utc_timestamp
from engine.metrics import best_cells
from engine.models import TrainingConfig
from engine.report import write_report
from engine.scoring import score_customers

EXIT_INPUT_ERROR = 2
# Steps reported by the engine: four models, then scoring.
ENGINE_STEPS = 5

console = Console()
err_console = Console(stderr=True)

OrdersOpt = Annotated[Path, typer.Option("--orders", help="orders CSV", dir_okay=False)]
HorizonOpt = Annotated[int, typer.Option("--horizon-days", min=1, help="prediction horizon in days")]
ChurnOpt = Annotated[
    int, typer.Option("--churn-horizon-days", min=1, help="no order in this many days = churned")
]
MinBuyersOpt = Annotated[int, typer.Option("--min-buyers", min=1, help="below this, use the baseline only")]


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(EXIT_INPUT_ERROR)


def load_orders_csv(path: Path) -> ShopFrames:
    """Read and validate the orders file, reporting skipped rows; exit 2 on an unusable file."""
    try:
        rows = pd.read_csv(path, dtype=str, keep_default_na=False)
        frames, report = frames_from_order_rows(rows)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise _fail(f"{path}: cannot read the orders file ({exc})") from exc
    except FrameError as exc:
        raise _fail(f"{path}: {exc}") from exc
    if report.dropped:
        err_console.print(f"[yellow]skipped rows[/yellow] in {path}: {report.summary()}")
    if frames.orders.empty:
        raise _fail(f"{path}: no usable orders")
    return frames


def _date(value: str, option: str) -> pd.Timestamp:
    try:
        return to_utc_timestamp(value)
    except ValueError as exc:
        raise _fail(f"{option} {value!r} is not a date (use YYYY-MM-DD)") from exc


@contextmanager
def engine_progress(label: str) -> Iterator[Callable[[str], None]]:
    """A progress bar that advances once per engine step and shows which step runs."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=ENGINE_STEPS)

        def step(description: str) -> None:
            progress.update(task, description=description, advance=1)

        yield step


def _print_messages(messages: list[str]) -> None:
    for message in messages:
        console.print(f"  {message}")


def _metrics_table(title: str, table: pd.DataFrame) -> Table:
    """One row per metric and one column per method, so it fits a narrow terminal; best in green."""
    out = Table(title=title)
    out.add_column("metric")
    for method in table.index:
        out.add_column(str(method), justify="right")
    best = best_cells(table)
    for metric in table.columns:
        texts = ("-" if math.isnan(v) else f"{v:.4f}" for v in table[metric])
        marks = best[metric]
        out.add_row(
            str(metric),
            *(f"[bold green]{t}[/bold green]" if b else t for t, b in zip(texts, marks, strict=True)),
        )
    return out


def predict(
    orders: OrdersOpt,
    as_of: Annotated[str, typer.Option("--as-of", help="score as of this date (YYYY-MM-DD, UTC)")],
    out: Annotated[Path, typer.Option("--out", help="predictions CSV to write", dir_okay=False)],
    horizon_days: HorizonOpt = 30,
    churn_horizon_days: ChurnOpt = 90,
    min_buyers: MinBuyersOpt = 200,
) -> None:
    """Train on the orders before --as-of and write one row of scores per customer."""
    frames = load_orders_csv(orders)
    history = history_at(frames, _date(as_of, "--as-of"))
    if history.orders.empty:
        raise _fail(f"no orders before {as_of} in {orders}")
    with engine_progress("loading") as step:
        result = score_customers(
            history,
            horizon_days,
            churn_horizon_days,
            config=TrainingConfig(min_buyers=min_buyers),
            progress=step,
        )
    result.scores.to_csv(out, index=False)
    console.print(f"wrote {len(result.scores)} customers to {out}")
    _print_messages(result.messages)


def backtest_command(
    orders: OrdersOpt,
    cutoff: Annotated[str, typer.Option("--cutoff", help="score as of this date, judge the next horizon")],
    horizon_days: HorizonOpt = 30,
    churn_horizon_days: ChurnOpt = 90,
    min_buyers: MinBuyersOpt = 200,
    report: Annotated[
        Path | None, typer.Option("--report", help="write an HTML report", dir_okay=False)
    ] = None,
) -> None:
    """Score as of --cutoff and compare espd, BG/NBD + Gamma-Gamma and RFM with what happened next."""
    frames = load_orders_csv(orders)
    cut = _date(cutoff, "--cutoff")
    if not (frames.orders["ordered_at"] < cut).any():
        raise _fail(f"no orders before {cutoff} in {orders}")
    with engine_progress("loading") as step:
        result: BacktestResult = backtest(
            frames, cut, horizon_days, churn_horizon_days, TrainingConfig(min_buyers=min_buyers), step
        )
    console.print(_metrics_table(f"next {horizon_days} days after {cutoff}", result.table))
    if not result.churn_table.empty:
        console.print(_metrics_table(f"active in the next {churn_horizon_days} days", result.churn_table))
    _print_messages(result.messages)
    if report is not None:
        write_report(
            result, report, title=f"espd backtest: {orders.name}, cutoff {cutoff}, {horizon_days} days"
        )
        console.print(f"report written to {report}")


def register(app: typer.Typer) -> None:
    """Add `predict` and `backtest` to the espd app."""
    app.command("predict")(predict)
    app.command("backtest")(backtest_command)
