"""Time the synthetic shop generator and print one JSON line.

Goals (issue 4): `small` in memory in < 10 s; `large` (1M people) streamed to disk in < 10 min with
< 2 GB peak RSS. Each measurement runs in its own process so its peak RSS is its own.

    .venv/bin/python bench/shop_generation.py                  # small + large
    .venv/bin/python bench/shop_generation.py --large-size 50000 --keep /tmp/shop
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure_small(seed: int) -> dict[str, object]:
    from simulators.shops import generate

    started = time.perf_counter()
    shop = generate("small", seed=seed)
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "people": len(shop.people),
        "orders": len(shop.orders),
        "events": len(shop.events),
    }


def measure_large(seed: int, size: int, directory: Path) -> dict[str, object]:
    from simulators.shops import write_large

    started = time.perf_counter()
    manifest = write_large(directory, size=size, seed=seed)
    seconds = time.perf_counter() - started
    disk = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
    return {"seconds": round(seconds, 1), "rows": manifest["rows"], "disk_mb": round(disk / 2**20, 1)}


def _child(args: argparse.Namespace) -> None:
    if args.child == "small":
        result = measure_small(args.seed)
    else:
        result = measure_large(args.seed, args.large_size, Path(args.out))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)  # wall time suffers on a busy box
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    print(json.dumps(result))


def _run_child(kind: str, args: argparse.Namespace, out: Path) -> dict[str, object]:
    command = [sys.executable, __file__, "--child", kind, "--seed", str(args.seed)]
    command += ["--large-size", str(args.large_size), "--out", str(out)]
    finished = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--large-size", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="write the large shop here and keep it")
    parser.add_argument("--child", choices=["small", "large"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    out = args.keep or Path(tempfile.mkdtemp(prefix="espd-large-shop-"))
    try:
        report = {
            "bench": "shop_generation",
            "small": _run_child("small", args, out),
            "large": {"people": args.large_size, **_run_child("large", args, out)},
        }
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
