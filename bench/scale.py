"""How the engine scales: features, training and scoring on synthetic shops of growing size.

    .venv/bin/python bench/scale.py                    # 100k and 300k customers
    .venv/bin/python bench/scale.py --full             # also 1M (about 10 orders, 40 events each)
    .venv/bin/python bench/scale.py --sizes 20000 60000
    .venv/bin/python bench/scale.py --sizes 100000 --backend dask --workers 2   # on a Dask LocalCluster

Each shop is streamed to disk once with `simulators.shops.write_large` and cached under
--cache-dir (generation is not what is measured). Each size runs in its own child process, so its
peak RSS (getrusage) is its own. Stages, timed in the child:
  load      read the CSVs and build the engine frames (tests.support.shop_frames)
  features  features + BTYD baseline at the scoring cutoff, alone
  training  score_customers from its start to "scoring customers" (rolling cutoffs, all models)
  scoring   the rest of score_customers: features at the cutoff, predictions, reasons (score-only)
The growth exponent b is fitted per stage as time ~ n^b over the sizes run (1 = linear).
With --backend dask the child starts a LocalCluster of --workers single-threaded worker processes and
the engine runs on it (engine.dask_backend); peak RSS then adds each worker's own peak to the child's.
Goals at 1M (issue 10): every stage <= 10 min, score-only <= 2 min, peak RSS <= 4 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import ROOT, emit

from engine.chunks import DEFAULT_CHUNK_CUSTOMERS

STAGES = ("load", "features", "training", "scoring")
GOAL_STAGE_S, GOAL_SCORE_S, GOAL_RSS_MB = 600, 120, 4096


def shop_dir(cache: Path, size: int, seed: int) -> Path:
    """The streamed shop of `size` people, written on first use."""
    from simulators.shops import write_large

    path = cache / f"shop-{size}-seed{seed}"
    if not (path / "manifest.json").exists():
        write_large(path, size=size, seed=seed)
    return path


def load_history(path: Path) -> Any:
    """Engine history at the shop's as_of, built the way the engine tests build it."""
    import pandas as pd

    from engine.frames import history_at
    from simulators.dataset import ShopData, ShopFrames
    from simulators.shops import read_table
    from tests.support.shop_frames import shop_frames

    manifest = json.loads((path / "manifest.json").read_text())
    tables = {
        t: pd.concat(read_table(path, t), ignore_index=True) for t in ("people", "orders", "order_lines")
    }
    tables["events"] = pd.concat(read_table(path, "events"), ignore_index=True)
    frames = ShopFrames(**tables, products=pd.DataFrame(), campaigns=pd.DataFrame())
    as_of = pd.Timestamp(manifest["as_of"])
    shop = ShopData(
        str(path.name),
        manifest["seed"],
        as_of.to_pydatetime(),
        manifest["currency"],
        [],
        [],
        [],
        [],
        [],
        _frames=frames,
    )
    return history_at(shop_frames(shop), as_of), manifest["rows"]


@contextmanager
def backend_for(name: str, workers: int, chunk_customers: int) -> Iterator[tuple[Any, Callable[[], float]]]:
    """The engine backend, and a function giving the peak RSS (MB) of its worker processes."""
    if name == "local":
        from engine.backend import LocalBackend

        yield LocalBackend(chunk_customers), lambda: 0.0
        return
    from distributed import Client, LocalCluster

    from engine.dask_backend import DaskBackend

    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):

        def workers_peak_mb() -> float:
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            return sum(peaks.values()) / 1024

        yield DaskBackend(client, chunk_customers), workers_peak_mb


def measure(path: Path, backend_name: str, workers: int, chunk_customers: int) -> dict[str, Any]:
    """Run in the child: time each stage and report peak RSS (the child's plus its Dask workers')."""
    from engine.models import SnapshotCache
    from engine.scoring import score_customers

    marks: dict[str, float] = {"start": time.perf_counter()}
    # CPU seconds of this process per stage: on a loaded, shared box they move less than wall time.
    cpu: dict[str, float] = {"start": time.process_time()}
    history, rows = load_history(path)
    marks["loaded"], cpu["loaded"] = time.perf_counter(), time.process_time()
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with backend_for(backend_name, workers, chunk_customers) as (backend, workers_peak_mb):
        marks["backend"], cpu["backend"] = time.perf_counter(), time.process_time()
        SnapshotCache(history, backend).at(history.cutoff)
        marks["features"], cpu["features"] = time.perf_counter(), time.process_time()

        def progress(message: str) -> None:
            if message.startswith("training") and "training" not in marks:
                marks["training"] = time.perf_counter()
            elif message == "scoring customers":
                marks["scoring"], cpu["scoring"] = time.perf_counter(), time.process_time()

        result = score_customers(history, progress=progress, backend=backend)
        done, cpu["done"] = time.perf_counter(), time.process_time()
        workers_mb = workers_peak_mb()
    marks.setdefault("training", marks["features"])
    marks.setdefault("scoring", marks["training"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    purchase = result.models["purchase"].holdout.get("lightgbm", {})
    return {
        "customers": int(history.orders["customer_id"].nunique()),
        "rows": rows,
        "backend": backend_name if backend_name == "local" else f"dask x{workers}",
        "chunk_customers": chunk_customers,
        "seconds": {
            "load": round(marks["loaded"] - marks["start"], 1),
            "features": round(marks["features"] - marks["backend"], 1),
            "training": round(marks["scoring"] - marks["features"], 1),
            "scoring": round(done - marks["scoring"], 1),
        },
        "child_cpu_seconds": {
            "load": round(cpu["loaded"] - cpu["start"], 1),
            "features": round(cpu["features"] - cpu["backend"], 1),
            "training": round(cpu.get("scoring", cpu["features"]) - cpu["features"], 1),
            "scoring": round(cpu["done"] - cpu.get("scoring", cpu["features"]), 1),
        },
        "cluster_start_s": round(marks["backend"] - marks["loaded"], 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024 + workers_mb),
        "workers_peak_rss_mb": round(workers_mb),
        "rss_after_load_mb": round(rss_loaded),
        "scored": len(result.scores),
        "model_kinds": sorted({m.kind for m in result.models.values()}),
        "purchase_holdout_auc": round(purchase["roc_auc"], 4) if purchase else None,
    }


def run_child(path: Path, backend: str, workers: int, chunk_customers: int) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        str(path),
        "--backend",
        backend,
        "--workers",
        str(workers),
        "--chunk-customers",
        str(chunk_customers),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def exponents(runs: dict[int, dict[str, Any]]) -> dict[str, float | None]:
    """Least-squares slope of log(seconds) on log(people) per stage."""
    sizes = sorted(runs)
    if len(sizes) < 2:
        return dict.fromkeys(STAGES)
    x = np.log(sizes)
    fitted: dict[str, float | None] = {}
    for stage in STAGES:
        y = np.log([max(runs[n]["seconds"][stage], 0.05) for n in sizes])
        fitted[stage] = round(float(np.polyfit(x, y, 1)[0]), 2)
    return fitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--full", action="store_true", help="add the 1M-customer shop")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/espd-bench-shops"))
    parser.add_argument("--backend", choices=("local", "dask"), default="local")
    parser.add_argument("--workers", type=int, default=2, help="Dask LocalCluster workers (--backend dask)")
    parser.add_argument(
        "--chunk-customers",
        type=int,
        default=DEFAULT_CHUNK_CUSTOMERS,
        help="buyers per feature chunk (a size above the shop's turns chunking off)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.child:
        print(json.dumps(measure(args.child, args.backend, args.workers, args.chunk_customers)))
        return
    sizes = sorted(set(args.sizes + ([1_000_000] if args.full else [])))
    runs = {
        n: run_child(shop_dir(args.cache_dir, n, args.seed), args.backend, args.workers, args.chunk_customers)
        for n in sizes
    }
    largest = runs[sizes[-1]]
    goals = {
        "at_people": sizes[-1],
        "all_stages_le_10min": all(s <= GOAL_STAGE_S for s in largest["seconds"].values()),
        "score_only_le_2min": largest["seconds"]["scoring"] <= GOAL_SCORE_S,
        "rss_le_4gb": largest["peak_rss_mb"] <= GOAL_RSS_MB,
    }
    summary = [
        f"{n:>9,} people: "
        + "  ".join(f"{k} {v:.1f}s" for k, v in r["seconds"].items())
        + f"  peak RSS {r['peak_rss_mb']:,} MB (after load {r['rss_after_load_mb']:,}, workers"
        + f" {r['workers_peak_rss_mb']:,})  purchase AUC {r['purchase_holdout_auc']}  [{r['backend']}]"
        for n, r in runs.items()
    ]
    fitted = exponents(runs)
    summary.append("growth exponent (time ~ n^b): " + ", ".join(f"{k} {v}" for k, v in fitted.items()))
    emit(
        "scale",
        {
            "runs": {str(n): r for n, r in runs.items()},
            "growth_exponent": fitted,
            "goals": goals,
            "command": "bench/scale.py --sizes "
            + " ".join(map(str, sizes))
            + f" --seed {args.seed} --backend {args.backend} --workers {args.workers}"
            + f" --chunk-customers {args.chunk_customers}",
        },
        summary,
    )


if __name__ == "__main__":
    main()
