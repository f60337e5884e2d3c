"""Peak memory of the daemon's score stage (`sync.scoring.score_store`) as the shop grows.

    .venv/bin/python bench/score_store.py --people 10000 40000 --chunk-customers 5000
    .venv/bin/python bench/score_store.py --people 10000 --before /tmp/espd-before   # and the old code

A synthetic shop (simulators.shops, seed 7) is written into a SQLite store through ingest
(`sync.ingest.write_page`, page by page, the way pulls write it), once per size and cached under
/tmp/espd-bench-stores. Each measurement is a fresh child process on a copy of that store: the first
run trains and stores the models (day 0), the second is the daily run (day 1: the registry's promoted
models score, segments and every stored value are recomputed). Peak RSS, wall and CPU seconds are the
child's own; `import_mb` is its resident memory just before scoring (the libraries loaded), so
`peak - import` is what the stage itself adds.

`--before DIR` also runs the children with DIR first on sys.path: a checkout of espd from before the
score stage read the store in chunks (`git archive <commit> | tar -x -C DIR`), whose `score_store`
loads the whole history; the chunk size does not exist there.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchlib import ROOT, emit

CACHE = Path("/tmp/espd-bench-stores")
AT = datetime(2026, 11, 23, 6, tzinfo=UTC)
PAGE = 5_000
SEED = 7


def _pages(shop: Any) -> Iterator[tuple[str, list[Any]]]:
    """The shop's records as ingest pages, built one page at a time (a 40k shop has 1.7M events)."""
    from connectors.records import EngagementEvent, Order, OrderLine, Profile

    emails = shop.people.set_index("person_id")["email"]
    lines = {oid: group for oid, group in shop.order_lines.groupby("order_id")}

    def order_lines(order_id: str) -> tuple[OrderLine, ...]:
        if order_id not in lines:
            return ()
        return tuple(
            OrderLine(vendor_id=str(ln.line_id), product_id=str(ln.product_id), category=ln.category,
                      quantity=ln.quantity, unit_price=ln.unit_price, discount=ln.discount)
            for ln in lines[order_id].itertuples()
        )  # fmt: skip

    builders = {
        "customers": (shop.people, lambda p: Profile(
            source="shop", vendor_id=str(p.person_id), email=p.email, country=p.country,
            timezone=p.timezone, created_at=p.created_at, updated_at=AT)),
        "orders": (shop.orders[shop.orders["cancelled_at"].isna()], lambda o: Order(
            source="shop", vendor_id=o.order_id, customer_vendor_id=str(o.person_id),
            email=emails[o.person_id], ordered_at=o.ordered_at, updated_at=AT, currency="EUR",
            total=o.total, discount_total=o.discount_total, lines=order_lines(o.order_id))),
        "events": (shop.events[shop.events["kind"].isin(["received", "opened", "clicked"])],
                   lambda e: EngagementEvent(source="shop", vendor_id=e.event_id, email=emails[e.person_id],
                                             kind=e.kind, occurred_at=e.occurred_at,
                                             campaign_id=e.campaign_id)),
    }  # fmt: skip
    for stream, (frame, build) in builders.items():
        for start in range(0, len(frame), PAGE):
            yield stream, [build(row) for row in frame.iloc[start : start + PAGE].itertuples()]


def filled_store(people: int) -> Path:
    """The cached store of a `people`-person shop, written through ingest the first time."""
    path = CACHE / f"store-{people}-seed{SEED}.sqlite"
    if path.exists():
        return path
    from connectors.base import Page
    from simulators import shops
    from sync.ingest import IngestPolicy, write_page
    from sync.store import migrate, open_engine, session_scope

    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    engine = open_engine(f"sqlite:///{partial}")
    migrate(engine)
    policy = IngestPolicy(timedelta(days=1), AT)
    for stream, records in _pages(shops.generate(people, seed=SEED).frames()):
        with session_scope(engine) as session:
            write_page(session, "shop", stream, Page(records, {}), policy)
    engine.dispose()
    partial.rename(path)
    return path


def _rss_now_mb() -> float:
    """This process's resident memory now (not its peak), from /proc."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(store: Path, chunk_customers: int, day: int) -> None:
    """One `score_store` run on `store`; prints its figures as one JSON line."""
    from sync.config import EngineConfig
    from sync.scoring import score_store
    from sync.store import open_engine

    import_mb = _rss_now_mb()
    chunked = "chunk_customers" in EngineConfig.model_fields
    settings = EngineConfig(**({"chunk_customers": chunk_customers} if chunked else {}))
    engine = open_engine(f"sqlite:///{store}")
    wall, cpu = time.perf_counter(), time.process_time()
    report = score_store(engine, {"shop": "shopify"}, settings, AT + timedelta(days=day))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "mode": "chunks" if chunked else "whole",
        "day": day,
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "peak_mb": round(usage.ru_maxrss / 1024, 1),
        "import_mb": round(import_mb, 1),
        "scored": report.scored,
        "trained": bool(report.trained),
        "reused": report.reused,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(figures))


def _measure(store: Path, people: int, chunk_customers: int, tree: Path | None) -> list[dict[str, Any]]:
    """Both runs (day 0 trains, day 1 scores with the promoted models) on a fresh copy of the store."""
    work = CACHE / f"run-{people}-{os.getpid()}.sqlite"
    shutil.copy(store, work)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (tree or ROOT, ROOT))}
    runs = []
    try:
        for day in (0, 1):
            command = [sys.executable, __file__, "--child", str(work), "--chunk-customers",
                       str(chunk_customers), "--day", str(day)]  # fmt: skip
            out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
            runs.append({"people": people, "tree": str(tree or ROOT), **json.loads(out.splitlines()[-1])})
            print(f"measured: {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
    finally:
        work.unlink(missing_ok=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, nargs="+", default=[10_000, 40_000])
    parser.add_argument("--chunk-customers", type=int, default=5_000)
    parser.add_argument("--before", type=Path, help="a checkout of espd before chunking, run the same way")
    parser.add_argument("--no-current", action="store_true", help="with --before: run only that checkout")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--day", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.chunk_customers, args.day)
        return
    runs = []
    for people in args.people:
        store = filled_store(people)
        trees = [*([args.before] if args.before else []), *([] if args.no_current else [None])]
        for tree in trees:
            runs.extend(_measure(store, people, args.chunk_customers, tree))
    summary = [f"score_store peak RSS, chunks of {args.chunk_customers} buyers (SQLite store, seed {SEED})"]
    for r in runs:
        what = "train + score" if r["day"] == 0 else "daily (promoted models)"
        summary.append(
            f"  {r['people']:>7} people  {r['mode']:<6} {what:<24} peak {r['peak_mb']:>7.0f} MB "
            f"(imports {r['import_mb']:.0f})  wall {r['wall_s']:>6.1f} s  cpu {r['cpu_s']:>6.1f} s  "
            f"scored {r['scored']}  load {r['loadavg'][0]}"
        )
    command = " ".join(["bench/score_store.py", *sys.argv[1:]])
    emit("score_store", {"command": command, "chunk_customers": args.chunk_customers, "runs": runs}, summary)


if __name__ == "__main__":
    main()
