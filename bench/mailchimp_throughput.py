"""Mailchimp connector throughput against the simulator at its documented limits; prints one JSON line.

    .venv/bin/python bench/mailchimp_throughput.py [--members 40000] [--push 240] [--batch 1000]
                                                   [--latency 0.5]

The simulator runs in its own process, enforces 10 simultaneous connections and spends `--latency`
seconds on every request (a stand-in for the network and Mailchimp's own time; the notes assume
about 2 s per page of 1000). At low latencies the client's CPU (JSON decoding and record validation,
about 30-60 us per member) bounds the pull instead, which `pull_client_cpu_s` shows.

Ceilings are the notes' formulas (sec. 6) with latencies measured here, one request alone:
pull = 10 x 1000 / L_page members/s, PATCH push = 10 / L_patch members/s, and `/batches` = the
simulator's serial rate R = 1 / op_seconds. The ceilings assume nothing else uses the account, so
the connector runs here with all 10 connections (`max_connections`; espd's default keeps 2 spare for
the merchant's other apps, which caps the first two fractions at 0.8).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import random
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

import httpx
from pydantic import SecretStr

from connectors.base import ConnectorSettings, FieldSpec, FieldType
from connectors.limits import MAILCHIMP_MAX_CONNECTIONS
from connectors.mailchimp import MailchimpConnector
from connectors.records import FieldUpdate
from simulators import mailchimp
from simulators.harness import Simulator
from simulators.mailchimp.batches import BatchOptions
from simulators.mailchimp.members_state import Member, subscriber_hash

BATCHES = BatchOptions(phase_seconds=0.5, op_seconds=0.01)
FIELDS = (
    FieldSpec("espd_churn_risk", FieldType.NUMBER),
    FieldSpec("espd_next_order", FieldType.DATE),
    FieldSpec("espd_segment", FieldType.TEXT),
)


def add_members(sim: Simulator, count: int, seed: int = 7) -> None:
    """Members changed at random times over two years (many share a day, few a second)."""
    rng = random.Random(seed)
    audience = sim.state.audience
    now = datetime.now(UTC) - timedelta(hours=1)
    for n in range(count):
        email = f"bench{n}@example.com"
        moment = now - timedelta(seconds=rng.randrange(2 * 365 * 86400))
        audience.add_member(
            Member(
                id=subscriber_hash(email),
                email=email,
                status="subscribed" if n % 5 else "unsubscribed",
                merge_fields={"FNAME": f"F{n}", "LNAME": "Bench"},
                timestamp_signup=moment,
                timestamp_opt=moment,
                last_changed=moment,
                seq=n,
            )
        )


def connector(url: str, key: str, **options: Any) -> MailchimpConnector:
    settings = ConnectorSettings(
        name="mailchimp",
        base_url=url,
        credentials={"api_key": SecretStr(key)},
        streams=("members",),
        timeout_seconds=60,
        # The default settle (120 s): every member changed over an hour ago, so the window closes
        # before the run and is read in full pages (connectors/mailchimp/members.py).
        options={"max_connections": MAILCHIMP_MAX_CONNECTIONS, **options},
    )
    return MailchimpConnector(settings)


def latency(url: str, key: str, method: str, path: str, **kwargs: Any) -> float:
    """Median time of one request alone (the L of the notes' formulas)."""
    times = []
    with httpx.Client(base_url=url, auth=("bench", key), timeout=60) as client:
        for _ in range(5):
            started = time.monotonic()
            client.request(method, path, **kwargs).raise_for_status()
            times.append(time.monotonic() - started)
    return sorted(times)[2]


async def pull(url: str, key: str, list_id: str) -> tuple[int, float, float]:
    """Members pulled, wall seconds, and the client's CPU seconds (JSON + validation bound it)."""
    async with connector(url, key, list_id=list_id) as c:  # the audience is known: no discovery call
        started, cpu, count = time.monotonic(), time.process_time(), 0
        async for page in c.streams()[0].read(None, datetime.now(UTC)):
            count += len(page.records)
        return count, time.monotonic() - started, time.process_time() - cpu


async def push(
    url: str, key: str, list_id: str, count: int, offset: int, **options: Any
) -> tuple[int, float]:
    batch = [
        FieldUpdate(
            destination="mailchimp",
            customer_vendor_id=f"{list_id}:{hashlib.md5(f'bench{n}@example.com'.encode()).hexdigest()}",
            values={"espd_churn_risk": n / count, "espd_next_order": "2026-12-24", "espd_segment": "vip"},
        )
        for n in range(offset, offset + count)
    ]
    async with connector(url, key, **options) as c:
        target = c.push_target()
        await target.ensure_fields(FIELDS)
        started = time.monotonic()
        results = await target.push(batch)
        return sum(r.ok for r in results), time.monotonic() - started


def serve(members: int, latency_s: float, pipe: Connection) -> None:
    """The simulator in its own process, so its CPU time does not share the client's GIL."""
    sim = mailchimp.build(latency_seconds=latency_s, batch_options=BATCHES)
    add_members(sim, members)
    server = sim.serve()
    pipe.send((server.url + sim.base_path, sim.credentials["api_key"], sim.state.audience.list_id))
    pipe.recv()  # the benchmark is done
    entries = sim.log.entries()
    throttled = sum(1 for e in entries if e.status in (403, 429))
    pipe.send((throttled, sim.log.max_in_flight, round(time.process_time(), 2)))
    server.stop()


def measure(url: str, key: str, list_id: str, args: argparse.Namespace) -> dict[str, float]:
    fields = "members.id,members.email_address,members.status,members.merge_fields,members.last_changed"
    l_page = latency(url, key, "GET", f"lists/{list_id}/members", params={"count": 1000, "fields": fields})
    pulled, pull_s, pull_cpu = asyncio.run(pull(url, key, list_id))
    patched, patch_s = asyncio.run(push(url, key, list_id, args.push, 0, batch_threshold=args.push + 1))
    hash0 = subscriber_hash("bench0@example.com")
    l_patch = latency(url, key, "PATCH", f"lists/{list_id}/members/{hash0}", json={"merge_fields": {}})
    batched, batch_s = asyncio.run(push(url, key, list_id, args.batch, args.push, batch_threshold=0))
    c = MAILCHIMP_MAX_CONNECTIONS
    rates = {"pull": pulled / pull_s, "patch": patched / patch_s, "batch": batched / batch_s}
    ceilings = {"pull": c * 1000 / l_page, "patch": c / l_patch, "batch": 1 / BATCHES.op_seconds}
    return {
        "pull_members": pulled,
        "page_latency_s": round(l_page, 3),
        "pull_client_cpu_s": round(pull_cpu, 2),
        "pull_wall_s": round(pull_s, 2),
        "patch_latency_s": round(l_patch, 3),
        "push_patch_members": patched,
        "push_batch_members": batched,
        **{f"{k}_per_s": round(v, 1) for k, v in rates.items()},
        **{f"{k}_ceiling_per_s": round(v, 1) for k, v in ceilings.items()},
        **{f"{k}_fraction": round(rates[k] / ceilings[k], 3) for k in rates},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=40_000)
    parser.add_argument("--push", type=int, default=240)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.5)
    args = parser.parse_args()
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.Process(target=serve, args=(args.members, args.latency, theirs), daemon=True)
    child.start()
    url, key, list_id = ours.recv()
    try:
        figures = measure(url, key, list_id, args)
    finally:
        ours.send("done")
        throttled, max_in_flight, simulator_cpu = ours.recv()
        child.join(timeout=10)
    print(
        json.dumps(
            {
                "vendor": "mailchimp",
                "simulated_latency_s": args.latency,
                **figures,
                "max_in_flight": max_in_flight,
                "throttled_responses": throttled,
                "simulator_cpu_s": simulator_cpu,  # the whole run: members, pull, pushes
            }
        )
    )


if __name__ == "__main__":
    main()
