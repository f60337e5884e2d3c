"""Erasure propagation against the simulators at their documented limits; prints one JSON line.

    .venv/bin/python bench/erasure_throughput.py [--n 100] [--vendors klaviyo mailchimp brevo]

Queues N erasures per vendor (people the simulator really holds) in a SQLite store through
`sync.erasure.enqueue`, then drains them back to back with one connector per vendor, as the daemon
would over consecutive cycles: seconds until none is pending, drains needed (each sends at most the
target's `per_cycle`), requests sent and 429s received (from the simulator's own log), and the
share of the documented limits reached: the fastest N requests the vendor's windows allow
(`floor_seconds`, from connectors.limits, the notes' numbers) over the measured time.

Ceilings (../shared/notes): Klaviyo `request_profile_deletion` 3/s burst and 60/min steady, so N > 60
is bound by the minute window; Brevo's contacts family 10/s (General plan); Mailchimp has no request
quota, only 10 simultaneous connections per account, so its rate is the connection cap over latency.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import emit

from connectors.base import Connector
from connectors.limits import BREVO, KLAVIYO, Window
from simulators import brevo, klaviyo, mailchimp, shops
from simulators.harness import Limits, Simulator
from sync.config import Config
from sync.erasure import Sealer, drain_one, enqueue, pending_counts, targets_of
from sync.privacy import erasure_key
from sync.store import migrate, open_engine
from sync.wiring import build_connector

# Klaviyo applies a deletion job after a delay; none here, so the bench can check nobody is left.
BUILD = {
    "klaviyo": functools.partial(klaviyo.build, deletion_delay_seconds=0.0),
    "mailchimp": mailchimp.build,
    "brevo": brevo.build,
}
WINDOWS: dict[str, tuple[Window, ...]] = {
    "klaviyo": KLAVIYO["request_profile_deletion"],
    "brevo": BREVO["general"]["contacts"],
}  # Mailchimp: no request quota


def floor_seconds(n: int, windows: tuple[Window, ...]) -> float:
    """When the n-th request may start at the earliest, if each window lets `requests` start in any
    `seconds` (the first starts at 0)."""
    starts: list[float] = []
    for i in range(n):
        starts.append(max([0.0] + [starts[i - w.requests] + w.seconds for w in windows if i >= w.requests]))
    return starts[-1] if starts else 0.0


def held_emails(vendor: str, sim: Simulator) -> list[str]:
    state = sim.state
    if vendor == "mailchimp":
        with state.audience.lock:
            return sorted(m.email.lower() for m in state.audience.members.values())
    if vendor == "klaviyo":
        state.advance()  # apply the deletion jobs that came due
    with state.lock:
        if vendor == "klaviyo":
            return sorted(str(p.get("email")).lower() for p in state.profiles.values() if p.get("email"))
        return sorted(c.email.lower() for c in state.contacts.by_id.values() if c.email)


async def propagate_all(vendor: str, connector: Connector, config: Config, engine: Any, key: bytes) -> int:
    """Drain until nothing is pending; return how many drains (daemon cycles) it took."""
    target = targets_of(config, [connector])[vendor]
    sealer, drains = Sealer(key), 0
    while pending_counts(engine).get(vendor, 0):
        report = await drain_one(engine, sealer, vendor, target)
        drains += 1
        if report.error:
            raise RuntimeError(f"{vendor}: {report.error}")
    return drains


def measure(vendor: str, n: int, people: int, workdir: Path) -> dict[str, Any]:
    sim = BUILD[vendor](shops.generate(people, seed=3), limits=Limits())
    emails = held_emails(vendor, sim)[:n]
    if len(emails) < n:
        raise SystemExit(f"{vendor}: the shop holds only {len(emails)} people; raise --people")
    with sim.serve() as server:
        config = Config.model_validate(
            {
                "state_dir": str(workdir / vendor),
                "connectors": {
                    vendor: {
                        "type": vendor,
                        "base_url": sim.base_url(server),
                        "api_key": sim.credentials["api_key"],
                        "erase": True,
                    }
                },
            }
        )
        engine = open_engine(config.store_url)
        migrate(engine)
        key = erasure_key(config.state_dir)
        for email in emails:
            enqueue(engine, key, email, [vendor], reason="bench")
        sim.log.clear()
        connector = build_connector(vendor, config.connectors[vendor])

        async def run() -> int:
            try:
                return await propagate_all(vendor, connector, config, engine, key)
            finally:
                await connector.aclose()

        started = time.monotonic()
        drains = asyncio.run(run())
        seconds = time.monotonic() - started
        entries = sim.log.entries()
    still_held = len(set(emails) & set(held_emails(vendor, sim)))
    floor = floor_seconds(n, WINDOWS[vendor]) if vendor in WINDOWS else None
    return {
        "erasures": n,
        "seconds": round(seconds, 2),
        "per_s": round(n / seconds, 2),
        "floor_seconds": floor,
        "share_of_limits": round(floor / seconds, 3) if floor else None,
        "drains": drains,
        "requests": len(entries),
        "http_429": sum(1 for e in entries if e.status == 429),
        "still_held": still_held,
    }


def _share(result: dict[str, Any]) -> str:
    if result["floor_seconds"] is None:
        return ", no documented request quota"
    return f"; the documented limits allow {result['floor_seconds']:.0f} s: {result['share_of_limits']:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="erasures per vendor")
    parser.add_argument("--people", type=int, default=600, help="size of the synthetic shop")
    parser.add_argument("--vendors", nargs="+", default=list(BUILD), choices=list(BUILD))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {vendor: measure(vendor, args.n, args.people, Path(tmp)) for vendor in args.vendors}
    summary = [
        f"{vendor:9} {r['erasures']} erasures in {r['seconds']:.1f} s ({r['per_s']:.2f}/s{_share(r)}), "
        f"{r['drains']} drain(s), {r['requests']} requests, {r['http_429']} x 429"
        for vendor, r in results.items()
    ]
    emit(
        "erasure_throughput",
        {"command": f"bench/erasure_throughput.py --n {args.n} --people {args.people}", "vendors": results},
        summary,
    )


if __name__ == "__main__":
    main()
