"""A cycle when nothing changed: what espd still asks the vendors, what it writes, how long it takes.

    .venv/bin/python bench/steady_state.py [--shop small] [--seed 7]

Serves a synthetic shop through the four simulators (limits off unless --documented-limits: the
second cycle sends a few dozen requests, far below any limit), runs one full
cycle (`espd once`'s code path: lock, migrate, pull, score, push), clears the simulators' request
logs, then runs a second cycle with nothing changed. Requests of the second cycle are counted by
kind from the request logs (Shopify's GraphQL POSTs by operation, since reads are POSTs there too).
The customers the first cycle wrote come back in the second (their vendor update time moved): those
echoes are counted as `pulled_unchanged`, and `pulled` is what the second cycle wrote to the store.
`cpu_s` (client + in-process simulators) is the figure least bent by other jobs on the box.
Goals (issue 10): 0 writes to any vendor, second cycle < 5 s on a `small` shop.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchlib import emit, peak_rss_mb, served_simulators

from simulators import shops
from simulators.harness import Limits, LoggedRequest
from sync.commands.cycle import run_one_cycle
from sync.pipeline import CycleReport

GOAL_SECONDS = 5.0
ID_SEGMENT = re.compile(r"^(\d+|(?=.*\d)[0-9a-f]{10,}|[0-9A-Z]{20,}|.*@.*|[0-9a-f-]{32,})$")
GRAPHQL_OPERATION = re.compile(r"\b(query|mutation)\b\s*(\w*)")


def request_kind(vendor: str, entry: LoggedRequest) -> tuple[str, bool]:
    """('METHOD /path/{id}', is_write); a Shopify GraphQL call is named by its operation."""
    if vendor == "shopify" and entry.path.endswith("graphql.json"):
        body = json.loads(entry.body or b"{}").get("query", "")
        found = GRAPHQL_OPERATION.search(body)
        operation, name = (found.group(1), found.group(2)) if found else ("query", "")
        return f"graphql {operation} {name}".strip(), operation == "mutation"
    path = "/".join("{id}" if ID_SEGMENT.match(part) else part for part in entry.path.split("/"))
    return f"{entry.method} {path}", entry.is_write


def counts(report: CycleReport) -> dict[str, Any]:
    return {**report.counts(), "seconds": {k: round(v, 2) for k, v in report.durations.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shop", default="small", help="synthetic shop size: tiny, small or a count")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--documented-limits",
        action="store_true",
        help="enforce the vendors' rate limits (the first cycle then takes minutes: Brevo orders, Klaviyo)",
    )
    args = parser.parse_args()
    shop = shops.generate(int(args.shop) if args.shop.isdigit() else args.shop, seed=args.seed)
    limits = Limits(enabled=args.documented_limits)
    with (
        tempfile.TemporaryDirectory(prefix="espd-bench-steady-") as tmp,
        served_simulators(shop, Path(tmp), limits) as (config, sims),
    ):
        for sim in sims.values():
            sim.log.keep_bodies = True
        started, cpu = time.perf_counter(), time.process_time()
        first = run_one_cycle(config)
        first_s, first_cpu = time.perf_counter() - started, time.process_time() - cpu
        for sim in sims.values():
            sim.log.clear()
        started, cpu = time.perf_counter(), time.process_time()
        second = run_one_cycle(config)
        second_s, second_cpu = time.perf_counter() - started, time.process_time() - cpu
        kinds: Counter[str] = Counter()
        writes: Counter[str] = Counter()
        for vendor, sim in sims.items():
            for entry in sim.log.entries():
                kind, is_write = request_kind(vendor, entry)
                kinds[f"{vendor} {kind}"] += 1
                writes[f"{vendor} {kind}"] += is_write
    total_writes = sum(writes.values())
    reused = bool(second.score and second.score.reused)
    summary = [
        f"first cycle {first_s:.1f} s ({'ok' if first.ok else 'FAILED'}), "
        f"pulled {first.counts()['pulled']:,}",
        f"second cycle {second_s:.1f} s, {second_cpu:.1f} CPU-s (goal < {GOAL_SECONDS:.0f} s), "
        f"{sum(kinds.values())} requests, {total_writes} writes (goal 0), "
        f"{second.counts()['pulled']:,} store rows written, {second.counts()['pulled_unchanged']:,} "
        f"records pulled back unchanged, scores {'reused' if reused else 'recomputed'}",
        *(f"  {n:>5}  {kind}{'  [WRITE]' if writes[kind] else ''}" for kind, n in sorted(kinds.items())),
    ]
    emit(
        "steady_state",
        {
            "shop": args.shop,
            "first_cycle": {
                "ok": first.ok,
                "wall_s": round(first_s, 2),
                "cpu_s": round(first_cpu, 2),
                **counts(first),
                "errors": first.errors,
            },
            "second_cycle": {
                "ok": second.ok,
                "wall_s": round(second_s, 2),
                "cpu_s": round(second_cpu, 2),
                "scores_reused": reused,
                **counts(second),
                "errors": second.errors,
            },
            "requests_by_kind": dict(sorted(kinds.items())),
            "writes_by_kind": {k: v for k, v in sorted(writes.items()) if v},
            "writes": total_writes,
            "peak_rss_mb": peak_rss_mb(),
            "goals_met": {"zero_writes": total_writes == 0, "under_5s": second_s < GOAL_SECONDS},
            "documented_limits": args.documented_limits,
            "command": f"bench/steady_state.py --shop {args.shop} --seed {args.seed}"
            + (" --documented-limits" if args.documented_limits else ""),
        },
        summary,
    )


if __name__ == "__main__":
    main()
