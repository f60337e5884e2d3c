"""Pull throughput into the SQLite store with the simulators' rate limits switched off.

    .venv/bin/python bench/pull_throughput.py [--people 10000] [--seed 7]

Every stream of the four connectors is pulled from empty through `sync.pull.pull_stream` (HTTP,
parse, validate, identity resolution, upsert), one stream at a time so each has the machine to
itself and its rate is its own. Each stream's pages are then replayed through `sync.pull.store_pages`
into a second, empty store and dropped: that is the store's share of the cost (ingest alone), and the
difference is HTTP + parsing + the simulators' own serving. The simulators run in this process
(threads), so `per_cpu_s` (records per CPU second of client + simulator) says what the code costs on
a box other jobs are loading; `peak_rss_mb` is the process's peak memory, simulators included.
Goals (issue 10): >= 20,000 profiles/s and >= 50,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import emit, peak_rss_mb, served_simulators

from connectors.base import Checkpoint, Page, PullStream
from simulators import shops
from simulators.harness import Limits
from sync.ingest import IngestPolicy
from sync.pull import BATCH_RECORDS, pull_stream, store_pages
from sync.store import migrate, open_engine
from sync.wiring import build_connector

KINDS = {
    "profiles": "profiles",
    "members": "profiles",
    "contacts": "profiles",
    "customers": "profiles",
    "events": "events",
    "email_activity": "events",
    "orders": "orders",
}
GOALS = {"profiles": 20_000, "events": 50_000}


class Recorded(PullStream):
    """A stream that keeps every page it passes on, to replay them into the store alone."""

    def __init__(self, inner: PullStream, pages: list[Page]) -> None:
        self.inner, self.pages = inner, pages
        self.name = inner.name  # type: ignore[misc]

    async def read(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> AsyncIterator[Page]:
        async for page in self.inner.read(checkpoint, sync_started_at):
            self.pages.append(page)
            yield page


def _store(url: str) -> Any:
    engine = open_engine(url)
    migrate(engine)
    return engine


async def pull_everything(config: Any, policy: IngestPolicy, ingest_url: str) -> list[dict[str, Any]]:
    """Pull each stream alone, then replay its pages into the ingest-only store; return per-stream rows.

    A stream's pages are dropped once replayed: holding every stream's pages (raw JSON included) until
    the end is what took 3.2 GB at 10,000 people.
    """
    engine, ingest_engine = _store(config.store_url), _store(ingest_url)
    rows = []
    for name, settings in config.connectors.items():
        if not settings.enabled:
            continue
        async with build_connector(name, settings) as connector:
            for stream in connector.streams():
                pages: list[Page] = []
                started, cpu = time.perf_counter(), time.process_time()
                report = await pull_stream(connector, Recorded(stream, pages), engine, policy, policy.now)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                if report.error:
                    raise RuntimeError(f"{name}.{stream.name} failed: {report.error}")
                rows.append(
                    {
                        "stream": f"{name}.{stream.name}",
                        "kind": KINDS[stream.name],
                        "records": report.pulled,
                        "seconds": seconds,
                        "cpu_seconds": cpu,
                        "ingest_seconds": ingest_alone(ingest_engine, name, stream.name, pages, policy),
                    }
                )
    engine.dispose()
    ingest_engine.dispose()
    return rows


def ingest_alone(engine: Any, connector: str, stream: str, pages: list[Page], policy: IngestPolicy) -> float:
    """Seconds to replay one stream's recorded pages into the empty ingest-only store, batched as the
    pull stage batches them (about `BATCH_RECORDS` records per transaction)."""
    started = time.perf_counter()
    batch: list[Page] = []
    for page in pages:
        batch.append(page)
        if sum(len(p.records) for p in batch) >= BATCH_RECORDS:
            store_pages(engine, connector, stream, batch, policy)
            batch = []
    if batch:
        store_pages(engine, connector, stream, batch, policy)
    return time.perf_counter() - started


def rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for kind in ("profiles", "events", "orders"):
        chosen = [r for r in rows if r["kind"] == kind]
        records = sum(r["records"] for r in chosen)
        pull_s = sum(r["seconds"] for r in chosen)
        cpu_s = sum(r["cpu_seconds"] for r in chosen)
        ingest_s = sum(r["ingest_seconds"] for r in chosen)
        result[kind] = {
            "records": records,
            "per_s": round(records / pull_s) if pull_s else None,
            "per_cpu_s": round(records / cpu_s) if cpu_s else None,
            "ingest_only_per_s": round(records / ingest_s) if ingest_s else None,
            "goal_per_s": GOALS.get(kind),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000, help="synthetic shop size")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    shop = shops.generate(args.people, seed=args.seed)
    policy = IngestPolicy(raw_retention=timedelta(days=30), now=datetime.now(UTC))
    with (
        tempfile.TemporaryDirectory(prefix="espd-bench-pull-") as tmp,
        served_simulators(shop, Path(tmp), Limits(enabled=False)) as (config, _),
    ):
        rows = asyncio.run(pull_everything(config, policy, f"sqlite:///{tmp}/ingest_only.db"))
    by_kind = rates(rows)
    streams = [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    met = all(by_kind[k]["per_s"] >= goal for k, goal in GOALS.items())
    summary = [
        f"{r['stream']:>26}: {r['records']:>8} records  {r['records'] / r['seconds']:>9,.0f}/s pulled"
        f"  {r['records'] / r['ingest_seconds']:>9,.0f}/s ingest alone"
        for r in rows
    ]
    summary += [
        f"{kind}: {v['per_s']:,}/s end to end ({v['per_cpu_s']:,}/CPU-s), "
        f"{v['ingest_only_per_s']:,}/s ingest alone (goal {v['goal_per_s']})"
        for kind, v in by_kind.items()
    ]
    emit(
        "pull_throughput",
        {
            "people": args.people,
            "goals_met": met,
            "peak_rss_mb": peak_rss_mb(),
            **by_kind,
            "streams": streams,
            "command": f"bench/pull_throughput.py --people {args.people} --seed {args.seed}",
        },
        summary,
    )


if __name__ == "__main__":
    main()
