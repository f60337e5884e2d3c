"""Brevo connector throughput against the simulator at its documented General-plan limits; prints
one JSON line.

    .venv/bin/python bench/brevo_throughput.py [--contacts 50000] [--push 300]

Ceilings (notes/brevo.md sec. 6): contact pull 10 RPS x 1000 = 10,000 contacts/s; push by
attribute-only PUT 10 RPS = 10 contacts/s (600/min). Pull and push share the contacts family; they
are measured one after the other, each with the whole budget, as the daemon runs them.

The simulator runs in its own process (as in mailchimp_throughput.py): in the benchmark's process
its JSON rendering shared the client's GIL, and at 10 pages of 1000 a second the two together
need more than one core, so the pull read CPU, not the rate limit. `pull_client_cpu_s` is the
client's share (JSON decoding and record validation); the ceiling takes about
10,000 x that / pull_records cores of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

from pydantic import SecretStr

from connectors.base import ConnectorSettings, FieldSpec, FieldType
from connectors.brevo import BrevoConnector
from connectors.records import FieldUpdate
from simulators import brevo
from simulators.brevo.contacts import Contact
from simulators.harness import Limits, Simulator

PULL_CEILING_PER_S = 10 * 1000
PUSH_CEILING_PER_S = 10.0
FIELDS = (
    FieldSpec("espd_churn_risk", FieldType.NUMBER),
    FieldSpec("espd_next_order", FieldType.DATE),
    FieldSpec("espd_segment", FieldType.CATEGORY),
)


def add_contacts(sim: Simulator, count: int) -> None:
    state = sim.state
    created = datetime(2024, 1, 1, tzinfo=UTC)
    with state.lock:
        for n in range(1, count + 1):
            at = created + timedelta(minutes=n)
            state.contacts.add(
                Contact(n, f"bench{n}@example.com", at, at, list_ids=[2], attributes={"FIRSTNAME": f"B{n}"})
            )


def connector(key: str, url: str) -> BrevoConnector:
    settings = ConnectorSettings(
        name="brevo",
        base_url=url,
        credentials={"api_key": SecretStr(key)},
        streams=("contacts",),
        timeout_seconds=30,
    )
    return BrevoConnector(settings)


async def measure(key: str, url: str, push: int) -> dict[str, Any]:
    async with connector(key, url) as conn:
        started, cpu, pulled = time.monotonic(), time.process_time(), 0
        async for page in conn.streams()[0].read(None, datetime.now(UTC)):
            pulled += len(page.records)
        pull_s, pull_cpu = time.monotonic() - started, time.process_time() - cpu
        target = conn.push_target()
        assert target is not None
        await target.ensure_fields(FIELDS)
        updates = [
            FieldUpdate(
                destination="brevo",
                customer_vendor_id=str(n),
                values={
                    "espd_churn_risk": n / push,
                    "espd_next_order": "2026-12-24",
                    "espd_segment": "active",
                },
            )
            for n in range(1, push + 1)
        ]
        started = time.monotonic()
        results = await target.push(updates)
        push_s = time.monotonic() - started
    pull_rate, push_rate = pulled / pull_s, sum(r.ok for r in results) / push_s
    return {
        "vendor": "brevo",
        "pull_records": pulled,
        "pull_seconds": round(pull_s, 2),
        "pull_records_per_s": round(pull_rate, 1),
        "pull_client_cpu_s": round(pull_cpu, 2),
        "pull_fraction_of_ceiling": round(pull_rate / PULL_CEILING_PER_S, 3),
        "push_records": len(updates),
        "push_ok": sum(r.ok for r in results),
        "push_seconds": round(push_s, 2),
        "push_records_per_min": round(push_rate * 60, 1),
        "push_fraction_of_ceiling": round(push_rate / PUSH_CEILING_PER_S, 3),
    }


def serve(contacts: int, pipe: Connection) -> None:
    """The simulator in its own process, so its CPU time does not share the client's GIL."""
    sim = brevo.build(None, limits=Limits(), time_offset=timedelta(hours=2))
    add_contacts(sim, contacts)
    server = sim.serve()
    pipe.send((server.url + sim.base_path, sim.credentials["api_key"]))
    pipe.recv()  # the benchmark is done
    entries = sim.log.entries()
    pipe.send(
        {
            "rate_limited_429": sum(1 for e in entries if e.status == 429),
            "requests": len(entries),
            "simulator_cpu_s": round(time.process_time(), 2),
        }
    )
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--push", type=int, default=300)
    args = parser.parse_args()
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.Process(target=serve, args=(args.contacts, theirs), daemon=True)
    child.start()
    url, key = ours.recv()
    try:
        figures = asyncio.run(measure(key, url, min(args.push, args.contacts)))
    finally:
        ours.send("done")
        counts = ours.recv()
        child.join(timeout=10)
    print(json.dumps({**figures, **counts}))


if __name__ == "__main__":
    main()
