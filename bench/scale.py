"""How the engine scales: features, training and scoring on synthetic shops of growing size.

    .venv/bin/python bench/scale.py                    # 100k and 300k customers
    .venv/bin/python bench/scale.py --full             # also 1M (about 10 orders, 40 events each)
    .venv/bin/python bench/scale.py --sizes 20000 60000
    .venv/bin/python bench/scale.py --sizes 100000 --mode whole   # the whole history in memory
    .venv/bin/python bench/scale.py --sizes 100000 --mode whole --backend dask --workers 2   # on Dask

Each shop is streamed to disk once with `simulators.shops.write_large` and cached under
--cache-dir (generation is not what is measured). Each size runs in its own child process, so its
peak RSS (getrusage) is its own.

--mode chunks (default) reads the shop one customer-hash chunk at a time, as the daemon reads its store
(`engine.scoring.score_chunks`): the shop is first split once into --chunk-customers-sized Parquet
chunks (`partition`, not measured, like generation). Stages, timed in the child:
  load      pass one: read every chunk, gather the BTYD summaries and shop-wide counts
  training  train on the first chunks (at most MAX_TRAIN_CUSTOMERS buyers)
  scoring   pass two: read every chunk again, its features, predictions and reasons
  score_only  a second run with the trained models (both passes, no training): the daily run
--mode whole is the path before chunked reading: the whole history in memory, `score_customers`:
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from benchlib import ROOT, emit

from engine.chunks import DEFAULT_CHUNK_CUSTOMERS, chunk_of, chunks_for_buyers

STAGES = {
    "whole": ("load", "features", "training", "scoring"),
    "chunks": ("load", "training", "scoring", "score_only"),
}
GOAL_STAGE_S, GOAL_SCORE_S, GOAL_RSS_MB = 600, 120, 4096
# The columns the engine frames are built from (tests.support.shop_frames), per streamed table.
TABLE_COLUMNS = {
    "people": ("person_id", "created_at", "timezone"),
    "orders": ("order_id", "person_id", "ordered_at", "total", "discount_total", "cancelled_at"),
    "order_lines": ("order_id", "product_id", "category", "quantity", "unit_price", "discount"),
    "events": ("person_id", "campaign_id", "kind", "occurred_at"),
}


def shop_dir(cache: Path, size: int, seed: int) -> Path:
    """The streamed shop of `size` people, written on first use."""
    from simulators.shops import write_large

    path = cache / f"shop-{size}-seed{seed}"
    if not (path / "manifest.json").exists():
        write_large(path, size=size, seed=seed)
    return path


def engine_frames(path: Path, tables: dict[str, pd.DataFrame]) -> Any:
    """Engine frames from streamed tables, built the way the engine tests build them."""
    from simulators.dataset import ShopData, ShopFrames
    from tests.support.shop_frames import shop_frames

    manifest = json.loads((path / "manifest.json").read_text())
    frames = ShopFrames(**tables, products=pd.DataFrame(), campaigns=pd.DataFrame())
    as_of = pd.Timestamp(manifest["as_of"])
    shop = ShopData(
        str(path.name), manifest["seed"], as_of.to_pydatetime(), manifest["currency"], [], [], [], [], [],
        _frames=frames,
    )  # fmt: skip
    return shop_frames(shop)


def as_of(path: Path) -> pd.Timestamp:
    return pd.Timestamp(json.loads((path / "manifest.json").read_text())["as_of"])


def load_history(path: Path) -> Any:
    """Engine history at the shop's as_of, every table read whole."""
    from engine.frames import history_at
    from simulators.shops import read_table

    tables = {t: pd.concat(read_table(path, t), ignore_index=True) for t in TABLE_COLUMNS}
    rows = json.loads((path / "manifest.json").read_text())["rows"]
    return history_at(engine_frames(path, tables), as_of(path)), rows


def _person(frame: pd.DataFrame) -> pd.Series:
    """Each row's person id as the engine's customer id (order lines: from their order id, O<person>-<n>)."""
    if "person_id" in frame:
        return frame["person_id"].astype(str)
    return frame["order_id"].str.extract(r"^O(\d+)-", expand=False)


def partition(path: Path, n_chunks: int) -> Path:
    """The shop's tables split by customer hash (`engine.chunks.chunk_of`) into one Parquet file per table
    and chunk, streamed table by table; written on first use (like the shop, it is not what is measured)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from simulators.shops import read_table

    out = path / f"chunks-{n_chunks}"
    if (out / "done").exists():
        return out
    out.mkdir(exist_ok=True)
    for table, columns in TABLE_COLUMNS.items():
        writers: dict[int, Any] = {}
        for frame in read_table(path, table):
            codes = chunk_of(_person(frame), n_chunks)
            for index in np.unique(codes):
                part = pa.Table.from_pandas(frame.loc[codes == index, list(columns)], preserve_index=False)
                if index not in writers:
                    writers[index] = pq.ParquetWriter(out / f"{table}-{index}.parquet", part.schema)
                writers[index].write_table(part.cast(writers[index].schema))
        for writer in writers.values():
            writer.close()
    (out / "done").write_text("")
    return out


@dataclass(frozen=True)
class FileChunks:
    """The partitioned shop as an `engine.chunks.ChunkSource`: chunk i is read from its Parquet files."""

    shop: Path
    n_chunks: int

    def chunk(self, index: int) -> Any:
        directory = self.shop / f"chunks-{self.n_chunks}"
        tables = {}
        for table, columns in TABLE_COLUMNS.items():
            file = directory / f"{table}-{index}.parquet"
            tables[table] = pd.read_parquet(file) if file.exists() else pd.DataFrame(columns=list(columns))
        return engine_frames(self.shop, tables)


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


def measure_whole(path: Path, backend_name: str, workers: int, chunk_customers: int) -> dict[str, Any]:
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


def measure_chunks(path: Path, chunk_customers: int) -> dict[str, Any]:
    """Run in the child: score the partitioned shop chunk by chunk, then again with its models."""
    from engine.scoring import score_chunks

    people = json.loads((path / "manifest.json").read_text())["people"]
    source = FileChunks(path, chunks_for_buyers(people, chunk_customers))
    marks: dict[str, float] = {"start": time.perf_counter()}
    cpu: dict[str, float] = {"start": time.process_time()}

    def mark(name: str) -> None:
        marks[name], cpu[name] = time.perf_counter(), time.process_time()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # On stderr as it happens: a run stopped at the time box still tells how far it got.
        print(
            f"{name} at {marks[name] - marks['start']:.1f} s, peak RSS {rss:,.0f} MB",
            file=sys.stderr,
            flush=True,
        )

    def progress(message: str) -> None:
        if message.startswith("training") and "training" not in marks:
            mark("training")
        elif message == "scoring customers":
            mark("scoring")

    result = score_chunks(source, as_of(path), progress=progress)
    mark("done")
    again = score_chunks(source, as_of(path), models=result.models)
    mark("score_only")
    marks.setdefault("training", marks["scoring"])
    cpu.setdefault("training", cpu["scoring"])
    stages = (
        ("load", "start", "training"),
        ("training", "training", "scoring"),
        ("scoring", "scoring", "done"),
        ("score_only", "done", "score_only"),
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    purchase = result.models["purchase"].holdout.get("lightgbm", {})
    return {
        "customers": len(result.scores),
        "rows": json.loads((path / "manifest.json").read_text())["rows"],
        "backend": f"local, {source.n_chunks} chunks read from Parquet",
        "chunk_customers": chunk_customers,
        "trained_on": result.trained_on,
        "seconds": {name: round(marks[b] - marks[a], 1) for name, a, b in stages},
        "child_cpu_seconds": {name: round(cpu[b] - cpu[a], 1) for name, a, b in stages},
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "workers_peak_rss_mb": 0,
        "rss_after_load_mb": None,
        "scored": len(result.scores),
        "score_only_equal": bool(again.scores.equals(result.scores)),
        "model_kinds": sorted({m.kind for m in result.models.values()}),
        "purchase_holdout_auc": round(purchase["roc_auc"], 4) if purchase else None,
    }


def run_child(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    if args.mode == "chunks":
        people = json.loads((path / "manifest.json").read_text())["people"]
        partition(path, chunks_for_buyers(people, args.chunk_customers))
    command = [sys.executable, __file__, "--child", str(path), "--mode", args.mode, "--backend", args.backend,
               "--workers", str(args.workers), "--chunk-customers", str(args.chunk_customers)]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def exponents(runs: dict[int, dict[str, Any]], stages: tuple[str, ...]) -> dict[str, float | None]:
    """Least-squares slope of log(seconds) on log(people) per stage."""
    sizes = sorted(runs)
    if len(sizes) < 2:
        return dict.fromkeys(stages)
    x = np.log(sizes)
    fitted: dict[str, float | None] = {}
    for stage in stages:
        y = np.log([max(runs[n]["seconds"][stage], 0.05) for n in sizes])
        fitted[stage] = round(float(np.polyfit(x, y, 1)[0]), 2)
    return fitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--full", action="store_true", help="add the 1M-customer shop")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/espd-bench-shops"))
    parser.add_argument("--mode", choices=("chunks", "whole"), default="chunks")
    parser.add_argument("--backend", choices=("local", "dask"), default="local", help="--mode whole only")
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
    if args.mode == "chunks" and args.backend != "local":
        parser.error("--backend dask runs with --mode whole only")
    if args.child:
        if args.mode == "chunks":
            print(json.dumps(measure_chunks(args.child, args.chunk_customers)))
        else:
            print(json.dumps(measure_whole(args.child, args.backend, args.workers, args.chunk_customers)))
        return
    sizes = sorted(set(args.sizes + ([1_000_000] if args.full else [])))
    runs = {n: run_child(shop_dir(args.cache_dir, n, args.seed), args) for n in sizes}
    largest = runs[sizes[-1]]
    score_only = "score_only" if args.mode == "chunks" else "scoring"
    goals = {
        "at_people": sizes[-1],
        "all_stages_le_10min": all(s <= GOAL_STAGE_S for s in largest["seconds"].values()),
        "score_only_le_2min": largest["seconds"][score_only] <= GOAL_SCORE_S,
        "rss_le_4gb": largest["peak_rss_mb"] <= GOAL_RSS_MB,
    }
    summary = [
        f"{n:>9,} people: "
        + "  ".join(f"{k} {v:.1f}s" for k, v in r["seconds"].items())
        + f"  peak RSS {r['peak_rss_mb']:,} MB (after load {r['rss_after_load_mb']}, workers"
        + f" {r['workers_peak_rss_mb']:,})  purchase AUC {r['purchase_holdout_auc']}  [{r['backend']}]"
        for n, r in runs.items()
    ]
    fitted = exponents(runs, STAGES[args.mode])
    summary.append("growth exponent (time ~ n^b): " + ", ".join(f"{k} {v}" for k, v in fitted.items()))
    emit(
        "scale",
        {
            "runs": {str(n): r for n, r in runs.items()},
            "growth_exponent": fitted,
            "goals": goals,
            "command": "bench/scale.py --sizes "
            + " ".join(map(str, sizes))
            + f" --seed {args.seed} --mode {args.mode} --backend {args.backend} --workers {args.workers}"
            + f" --chunk-customers {args.chunk_customers}",
        },
        summary,
    )


if __name__ == "__main__":
    main()
