"""A cycle after nothing changed, against the four simulators over loopback: the customers espd wrote
come back from every vendor (their update times moved), and none of it is written or re-scored."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

import simulators
from simulators import shops
from simulators.harness import Limits
from sync import tables
from sync.commands.common import read_config
from sync.commands.cycle import run_one_cycle
from sync.commands.demo import write_demo_config
from sync.store import open_engine, row_counts

PEOPLE = 120


def _identities(url: str) -> dict[tuple[str, str], tuple[object, ...]]:
    engine = open_engine(url)
    with Session(engine) as session:
        rows = session.execute(select(tables.Identity)).scalars()
        found = {(r.source, r.vendor_id): (r.pulled_at, r.vendor_updated_at, r.properties) for r in rows}
    counts = row_counts(engine)
    engine.dispose()
    return found | {("counts", ""): tuple(sorted((k, v) for k, v in counts.items() if k != "runs"))}


def test_a_second_unchanged_cycle_writes_no_rows_and_reuses_the_scores(tmp_path: Path) -> None:
    shop = shops.generate(PEOPLE, seed=5)
    with ExitStack() as stack:
        served = {}
        for vendor in simulators.VENDORS:
            simulator = simulators.build(vendor, shop, limits=Limits(enabled=False))
            server = simulator.serve()
            stack.callback(server.stop)
            served[vendor] = (simulator, simulator.base_url(server))
        config = read_config(write_demo_config(tmp_path / "state", served))
        first = run_one_cycle(config)
        assert first.ok and first.counts()["pushed"] > 0, first.errors
        before = _identities(config.store_url)
        second = run_one_cycle(config)
    assert second.ok, second.errors
    counts = second.counts()
    echoed = {r.connector for r in second.pulls if r.unchanged}
    assert counts["pulled"] == 0 and counts["pushed"] == 0, counts
    assert echoed >= {"klaviyo", "brevo", "shopify"}, counts  # each vendor names espd's fields its own way
    assert second.score is not None and second.score.reused and second.score.scored > 0
    assert _identities(config.store_url) == before
