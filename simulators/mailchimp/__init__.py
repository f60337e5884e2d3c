"""A strict local Mailchimp Marketing API v3 (see /work/shared/notes/mailchimp.md, sec. 7).

`build(shop)` returns a `Simulator`; clients use `server.url + sim.base_path` (`/3.0`) and HTTP basic
auth with any username and `sim.credentials["api_key"]` as password. The key's data center suffix
must match `dc` (default `us21`), as the real API checks the key against the host.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from simulators.dataset import ShopData
from simulators.harness import Faults, Limits, RequestLog, Simulator, SimulatorMiddleware
from simulators.mailchimp.app import API_PREFIX, build_app
from simulators.mailchimp.batches import BatchOptions, BatchQueue
from simulators.mailchimp.context import MailchimpState
from simulators.mailchimp.errors import render_error
from simulators.mailchimp.gate import AccountGate, GateOptions
from simulators.mailchimp.members_state import Clock, utc_now
from simulators.mailchimp.seed import seed_audience, seed_reports, seed_store

DEFAULT_DC = "us21"
DEFAULT_KEY_HEX = "5f3c0a9e8d7b6a5c4e3f2a1b0c9d8e7f"

__all__ = ["DEFAULT_DC", "MailchimpState", "build", "default_api_key"]


def default_api_key(dc: str = DEFAULT_DC) -> str:
    return f"{DEFAULT_KEY_HEX}-{dc}"


def empty_shop() -> ShopData:
    return ShopData(
        name="empty",
        seed=0,
        as_of=datetime.now(UTC),
        currency="USD",
        people=[],
        products=[],
        orders=[],
        campaigns=[],
        events=[],
    )


def build(
    shop: ShopData | None = None,
    *,
    limits: Limits | None = None,
    faults: Faults | None = None,
    keep_bodies: bool = False,
    dc: str = DEFAULT_DC,
    clock: Clock = utc_now,
    latency_seconds: float = 0.0,
    bare_403_every: int | None = None,
    batch_options: BatchOptions | None = None,
    **unknown: Any,
) -> Simulator:
    """Options: `dc` (the data center this server plays), `clock` (UTC now for writes),
    `latency_seconds` (server time per request, lets concurrency build up), `bare_403_every` (chaos:
    every Nth over-limit answer is a bare 403), `batch_options` (batch phase timings, URL lifetime)."""
    if unknown:
        raise TypeError(f"mailchimp.build: unknown option(s) {sorted(unknown)}")
    shop = shop or empty_shop()
    limits = limits or Limits()
    faults = faults or Faults()
    audience = seed_audience(shop, clock)
    state = MailchimpState(
        audience=audience,
        reports=seed_reports(shop, audience),
        store=seed_store(shop, audience),
        batches=BatchQueue(options=batch_options or BatchOptions(), clock=lambda: audience.now()),
        faults=faults,
        dc=dc,
    )
    api_key = default_api_key(dc)
    gate = AccountGate(
        build_app(state),
        GateOptions(
            api_key=api_key,
            dc=dc,
            limits=limits,
            api_prefix=API_PREFIX,
            latency_seconds=latency_seconds,
            bare_403_every=bare_403_every,
        ),
    )
    log = RequestLog(keep_bodies=keep_bodies)
    return Simulator(
        vendor="mailchimp",
        app=SimulatorMiddleware(gate, log, faults, render_error),
        log=log,
        faults=faults,
        limits=limits,
        state=state,
        credentials={"api_key": api_key, "dc": dc, "username": "espd"},
        base_path=API_PREFIX,
    )
