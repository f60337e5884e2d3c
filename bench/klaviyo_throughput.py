"""Klaviyo connector throughput against the simulator at its documented limits; prints one JSON line.

    .venv/bin/python bench/klaviyo_throughput.py [--profiles 60000] [--customers 2000] [--push 30000]

Pull rates are compared with what the documented limits allow from a fresh quota in the measured time
(`page size x min(burst x T, steady x ceil(T / 60))`, notes section 5), because a run shorter than the
60 s steady window can use one whole window's budget: records/min alone would overstate the ceiling
fraction; `*_fraction_of_per_minute_ceiling` compares the same rate with the notes' per-minute figure
(above 1 while a short run spends a fresh window's budget in seconds). Push is compared with 150
jobs/min x 10,000 profiles accepted: `push_accepted_*` counts until the last job was accepted (202),
which is what that ceiling bounds; `push_*` until every job completed, which adds the simulator's
queued/processing delay (Klaviyo's processing time is not documented) and the polling.
`--push-seconds S` pushes full jobs round and round for S seconds instead of one batch, so `push_*`
then measures a steady state rather than one job's latency.

The simulator runs in its own process (its CPU would otherwise share the connector's GIL):
`*_cpu_s` (the client's), `*_per_cpu_s` (records per client CPU second) and `*_cores_for_ceiling`
(client cores the ceiling's rate would take) tell a CPU bound from a slow client, and
`*_simulator_cpu_s` / `*_simulator_cores` show when the simulator's own CPU (near 1 core) binds.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import multiprocessing
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

from pydantic import SecretStr

from connectors.base import ConnectorSettings, PullStream, PushTarget
from connectors.klaviyo import KlaviyoConnector
from connectors.records import FieldUpdate
from simulators import klaviyo, shops
from simulators.harness import Limits, Simulator
from simulators.klaviyo.writes import ProfileWrite, upsert

LIMITS = {"profiles": (75, 750, 100), "events": (350, 3500, 200)}  # burst/s, steady/min, page size
JOB_SIZE = 10_000
PUSH_CEILING_PER_MIN = 150 * JOB_SIZE
PUSHERS = 8  # jobs in flight: a job's round trip (accept, process, poll) is a few of the 0.1 s burst slots


def ceiling(stream: str, seconds: float) -> float:
    burst, steady, page = LIMITS[stream]
    return page * min(burst * seconds, steady * math.ceil(max(seconds, 1e-9) / 60))


async def push_for(target: PushTarget, batch: list[FieldUpdate], seconds: float) -> tuple[int, int]:
    """Profiles pushed ok and jobs run. With `seconds` 0 the batch is pushed once; otherwise full jobs of
    it are pushed round and round by concurrent pushers (one job each: creation, the simulator's
    queued/processing delay, polling) until `seconds` have passed, then the last jobs are waited for."""
    if not seconds:
        return sum(r.ok for r in await target.push(batch)), math.ceil(len(batch) / JOB_SIZE)
    jobs = [batch[i : i + JOB_SIZE] for i in range(0, len(batch) - JOB_SIZE + 1, JOB_SIZE)]
    if not jobs:
        raise SystemExit(f"--push-seconds needs --push of at least {JOB_SIZE} profiles")
    deadline, turns = time.monotonic() + seconds, itertools.count()
    ok, runs = 0, 0

    async def pusher() -> None:
        nonlocal ok, runs
        while time.monotonic() < deadline:
            results = await target.push(jobs[next(turns) % len(jobs)])
            ok, runs = ok + sum(r.ok for r in results), runs + 1

    await asyncio.gather(*(pusher() for _ in range(PUSHERS)))
    return ok, runs


def per_minute(stream: str) -> float:
    """The notes' ceiling as a rate (steady requests/min x page size), which a run past 60 s approaches."""
    _burst, steady, page = LIMITS[stream]
    return steady * page


def add_profiles(sim: Simulator, count: int) -> None:
    for n in range(count):
        upsert(sim.state, ProfileWrite(None, {"email": f"bench{n}@example.com"}, {}))


async def drain(stream: PullStream) -> tuple[int, float]:
    started, count = time.monotonic(), 0
    async for page in stream.read(None, datetime.now(UTC)):
        count += len(page.records)
    return count, time.monotonic() - started


def cpu_figures(
    name: str, count: int, rate_ceiling: float, cpu: float, sim_cpu: float, seconds: float
) -> dict[str, Any]:
    """Client CPU (and the cores the ceiling's rate would take at this cost) and the simulator's share."""
    per_cpu = count / max(cpu, 1e-9)
    return {
        f"{name}_cpu_s": round(cpu, 2),
        f"{name}_per_cpu_s": round(per_cpu),
        f"{name}_cores_for_ceiling": round(rate_ceiling / per_cpu, 2),
        f"{name}_simulator_cpu_s": round(sim_cpu, 2),
        f"{name}_simulator_cores": round(sim_cpu / max(seconds, 1e-9), 2),
    }


def updates(ids: list[str]) -> list[FieldUpdate]:
    return [
        FieldUpdate(
            destination="klaviyo",
            customer_vendor_id=vendor_id,
            values={
                "espd_churn_risk": (n % 100) / 100,
                "espd_next_order": "2026-12-24",
                "espd_segment": "vip",
            },
        )
        for n, vendor_id in enumerate(ids)
    ]


async def run(
    args: argparse.Namespace, url: str, key: str, ids: list[str], sim_cpu: Callable[[], float]
) -> dict[str, Any]:
    settings = ConnectorSettings(
        name="klaviyo",
        base_url=url,
        credentials={"api_key": SecretStr(key)},
        streams=("profiles", "events"),
        lookback=timedelta(minutes=10),
        options={
            "profile_windows": args.windows,
            "event_windows": args.event_windows,
            "job_poll_seconds": 0.5,
            "job_poll_max_seconds": 2,
        },
    )
    result: dict[str, Any] = {}
    accepted: list[float] = []  # when each bulk import job was accepted

    def sink(event: str, **fields: Any) -> None:
        if event == "http_request" and fields.get("status") == "202":
            accepted.append(time.monotonic())

    async with KlaviyoConnector(settings, sink=sink) as connector:
        profiles, events = connector.streams()
        for name, stream in (("profiles", profiles), ("events", events)):
            cpu, sim = time.process_time(), sim_cpu()
            count, seconds = await drain(stream)
            result[f"{name}_pulled"] = count
            result[f"{name}_seconds"] = round(seconds, 2)
            result[f"{name}_per_min"] = round(count / seconds * 60)
            result[f"{name}_fraction_of_ceiling"] = round(count / ceiling(name, seconds), 3)
            result[f"{name}_fraction_of_per_minute_ceiling"] = round(
                count / seconds * 60 / per_minute(name), 3
            )
            cpu, sim = time.process_time() - cpu, sim_cpu() - sim
            result |= cpu_figures(name, count, ceiling(name, seconds) / seconds, cpu, sim, seconds)
        target = connector.push_target()
        started, cpu, sim = time.monotonic(), time.process_time(), sim_cpu()
        ok, jobs = await push_for(target, updates(ids), args.push_seconds)
        seconds = time.monotonic() - started
        cpu, sim = time.process_time() - cpu, sim_cpu() - sim
    accepted_seconds = max(accepted, default=started) - started
    result.update(
        push_ok=ok,
        push_jobs=jobs,
        push_seconds=round(seconds, 2),
        push_per_min=round(ok / seconds * 60),
        push_fraction_of_ceiling=round(ok / seconds * 60 / PUSH_CEILING_PER_MIN, 4),
        push_accepted_seconds=round(accepted_seconds, 2),
        push_accepted_fraction_of_ceiling=round(
            ok / max(accepted_seconds, 1e-9) * 60 / PUSH_CEILING_PER_MIN, 4
        ),
        **cpu_figures("push", ok, PUSH_CEILING_PER_MIN / 60, cpu, sim, seconds),
    )
    return result


def serve(args: argparse.Namespace, pipe: Connection) -> None:
    """The simulator in its own process, so its CPU time does not share the connector's GIL."""
    sim = klaviyo.build(shops.generate(args.customers, seed=5), limits=Limits())
    add_profiles(sim, args.profiles)
    server = sim.serve()
    pipe.send((server.url, sim.credentials["api_key"], sorted(sim.state.profiles)[: args.push]))
    while pipe.recv() == "cpu":  # until the benchmark is done
        pipe.send(time.process_time())
    server.stop()
    pipe.send([e.status for e in sim.log.entries()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000, help="synthetic shop size (events)")
    parser.add_argument("--profiles", type=int, default=60_000, help="extra profiles added to the account")
    parser.add_argument("--push", type=int, default=30_000, help="profiles pushed in one batch run")
    parser.add_argument(
        "--push-seconds", type=float, default=0, help="push jobs of the batch round and round this long"
    )
    parser.add_argument("--windows", type=int, default=4, help="concurrent profile chains")
    parser.add_argument("--event-windows", type=int, default=4, help="concurrent chains per metric")
    args = parser.parse_args()
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.Process(target=serve, args=(args, theirs), daemon=True)
    child.start()
    url, key, ids = ours.recv()

    def sim_cpu() -> float:
        ours.send("cpu")
        return float(ours.recv())

    try:
        result = asyncio.run(run(args, url, key, ids, sim_cpu))
    finally:
        ours.send("done")
        statuses = ours.recv()
        child.join(timeout=10)
    result.update(
        requests=len(statuses),
        throttled_429=statuses.count(429),
        command="bench/klaviyo_throughput.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
