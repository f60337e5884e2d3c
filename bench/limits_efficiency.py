"""Pull and push against each simulator at its documented limits, as a fraction of the ceiling.

    .venv/bin/python bench/limits_efficiency.py               # short run (~1-2 min in all)
    .venv/bin/python bench/limits_efficiency.py --seconds 60  # sized for about a minute per direction
    .venv/bin/python bench/limits_efficiency.py --vendors brevo shopify

Built on the connector engineers' per-vendor scripts (bench/<vendor>_throughput.py): each runs in
its own process with sizes chosen here, and its JSON line is read back and put in one table of
fractions of the ceilings in ../shared/notes/README.md (each script documents its ceiling formula).
Goals (issue 10): >= 90 % of the ceiling, 0 rejected (429 / THROTTLED) requests in steady state.
The vendor scripts count rejections over the whole run, first 5 s included, so a 0 here is a 0 in
steady state; a non-zero count is an upper bound on the steady-state one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from benchlib import ROOT, emit

# Script arguments for the short run and for --seconds 60 (sizes that keep each direction busy for
# about a minute at the documented limits: Brevo pushes 10/s, Klaviyo pulls about 64,000 profiles in its
# first steady window, Shopify Plus restores 1,000 points/s, Mailchimp pages take --latency each).
SIZES = {
    "klaviyo": {
        "short": ["--profiles", "20000", "--customers", "1000", "--push", "20000", "--push-seconds", "10"],
        # ~64,000 profiles: 640 requests, inside the 700/min the client budgets, so the pull stays in one
        # steady window (past 60 s the fresh-quota ceiling counts a second window's 75,000). The push
        # can only reach the account's profiles, so it runs their jobs round and round for a minute.
        "full": ["--profiles", "60000", "--customers", "5000", "--push", "60000", "--push-seconds", "60"],
    },
    "mailchimp": {
        "short": ["--members", "10000", "--push", "60", "--batch", "300"],
        # The notes' page latency (about 2 s): at 0.5 s the simulator's own CPU per page binds first.
        "full": ["--members", "120000", "--push", "300", "--batch", "3000", "--latency", "2"],
    },
    "brevo": {
        "short": ["--contacts", "20000", "--push", "50"],
        "full": ["--contacts", "300000", "--push", "600"],
    },
    "shopify": {
        "short": ["--people", "3000", "--push", "3000"],
        # 40,000 pushes cost 50,000 points: 2.5 buckets, so most of the push runs at the restore rate.
        "full": ["--people", "12000", "--push", "40000"],
    },
}
GOAL_FRACTION = 0.9


def run_vendor(vendor: str, full: bool) -> dict[str, Any]:
    arguments = SIZES[vendor]["full" if full else "short"]
    command = [sys.executable, str(ROOT / "bench" / f"{vendor}_throughput.py"), *arguments]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:], "command": " ".join(command[1:])}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    raw = json.loads(lines[-1])
    return {
        **normalize(vendor, raw),
        "wall_s": round(time.perf_counter() - started, 1),
        "command": "bench/" + " ".join([f"{vendor}_throughput.py", *arguments]),
        "raw": raw,
    }


def normalize(vendor: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The fractions and rejection counts under one set of names, whatever each script calls them."""
    if vendor == "klaviyo":
        pulls = {"profiles": raw["profiles_fraction_of_ceiling"], "events": raw["events_fraction_of_ceiling"]}
        pushes = {
            "bulk_import_accepted": raw["push_accepted_fraction_of_ceiling"],
            "bulk_import_completed": raw["push_fraction_of_ceiling"],
        }
        rejected = raw["throttled_429"]
        cpu = {k: raw[k] for k in raw if k.endswith(("_per_cpu_s", "_cores_for_ceiling", "_cpu_s"))}
        return {"pull_fraction": pulls, "push_fraction": pushes, "rejected": rejected, "cpu": cpu}
    elif vendor == "mailchimp":
        pulls = {"members": raw["pull_fraction"]}
        pushes = {"patch": raw["patch_fraction"], "batches": raw["batch_fraction"]}
        rejected = raw["throttled_responses"]
    elif vendor == "brevo":
        pulls = {"contacts": raw["pull_fraction_of_ceiling"]}
        pushes = {"attribute_put": raw["push_fraction_of_ceiling"]}
        rejected = raw["rate_limited_429"]
    else:
        pulls = {
            "customers": raw["pull_fraction"],
            "customers_bucket_adjusted": raw["pull_fraction_bucket_adjusted"],
        }
        pushes = {"metafields_set": raw["push_fraction"]}
        pushes["metafields_set_bucket_adjusted"] = raw["push_fraction_bucket_adjusted"]
        rejected = raw["throttled"] + raw["http_429"]
    # Client and simulator CPU seconds, where the script reports them (a CPU-bound side reads low).
    cpu = {k: raw[k] for k in ("pull_client_cpu_s", "simulator_cpu_s") if k in raw}
    return {"pull_fraction": pulls, "push_fraction": pushes, "rejected": rejected, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=0, help="60: the full one-minute run per direction")
    parser.add_argument("--vendors", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    results = {vendor: run_vendor(vendor, args.seconds >= 60) for vendor in args.vendors}
    summary = []
    for vendor, r in results.items():
        if "error" in r:
            summary.append(f"{vendor:>9}: FAILED {r['error']}")
            continue
        fractions = {**r["pull_fraction"], **r["push_fraction"]}
        summary.append(
            f"{vendor:>9}: "
            + "  ".join(f"{k} {'n/a' if v is None else f'{v:.0%}'}" for k, v in fractions.items())
            + f"  rejected {r['rejected']}  ({r['wall_s']} s)"
            + "".join(f"  {k} {v}" for k, v in r["cpu"].items() if k.endswith("_cpu_s") and "_per_" not in k)
        )
    misses = sorted(
        f"{vendor}.{name}"
        for vendor, r in results.items()
        if "error" not in r
        for name, value in {**r["pull_fraction"], **r["push_fraction"]}.items()
        if value is not None and value < GOAL_FRACTION  # None: the run fit Shopify's bucket
    )
    summary.append(f"below {GOAL_FRACTION:.0%} of ceiling: {', '.join(misses) or 'none'}")
    emit(
        "limits_efficiency",
        {
            "full": args.seconds >= 60,
            "vendors": results,
            "below_goal": misses,
            "rejected_total": sum(r.get("rejected", 0) for r in results.values()),
            "command": "bench/limits_efficiency.py" + (f" --seconds {args.seconds}" if args.seconds else ""),
        },
        summary,
    )


if __name__ == "__main__":
    main()
