"""A strict local simulator of Klaviyo's REST API (revision 2026-07-15), for the operations espd uses.

    sim = build(shop)                      # or build() for an empty account
    with sim.serve() as server:
        httpx.get(f"{server.url}/api/profiles", headers={
            "Authorization": f"Klaviyo-API-Key {sim.credentials['api_key']}",
            "revision": "2026-07-15", "accept": "application/vnd.api+json"})

Default credentials: `api_key` has every scope the served operations need; `read_only_api_key` has only the
read scopes (`profiles:read`, `events:read`, `metrics:read`, `lists:read`). Tests register more keys with
`sim.state.add_api_key(key, scopes)`. Paths start with `/api`, so `base_path` is empty.

Vendor options: `clock` (epoch seconds; drives rate windows, job phases, deletion delays and `updated`
stamps), `job_queued_seconds` / `job_processing_seconds` (bulk import lifecycle), `deletion_delay_seconds`,
and `salt` (changes every generated id).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from simulators.dataset import ShopData
from simulators.harness import Faults, JobClock, Limits, RequestLog, Simulator, SimulatorMiddleware
from simulators.klaviyo.app import KlaviyoApi, create_app
from simulators.klaviyo.errors import render_error
from simulators.klaviyo.operations import ALL_SCOPES
from simulators.klaviyo.paging import CursorCodec
from simulators.klaviyo.ratelimit import RateLimiter
from simulators.klaviyo.seed import seed
from simulators.klaviyo.state import KlaviyoState

DEFAULT_API_KEY = "pk_espdsim0000000000000000000000000full"
READ_ONLY_API_KEY = "pk_espdsim000000000000000000000000read"
READ_SCOPES = frozenset({"profiles:read", "events:read", "metrics:read", "lists:read"})


def empty_shop() -> ShopData:
    return ShopData("empty", 0, datetime.now(UTC), "USD", [], [], [], [], [])


def build(
    shop: ShopData | None = None,
    *,
    limits: Limits | None = None,
    faults: Faults | None = None,
    keep_bodies: bool = False,
    clock: Callable[[], float] = time.time,
    job_queued_seconds: float = 0.2,
    job_processing_seconds: float = 0.5,
    deletion_delay_seconds: float = 1.0,
    salt: int = 7,
) -> Simulator:
    """Build the Klaviyo simulator seeded from what a Klaviyo account of `shop` would hold."""
    shop = shop or empty_shop()
    limits = limits or Limits()
    faults = faults or Faults()
    salt = salt * 1_000_003 + shop.seed
    state = KlaviyoState(
        seed(shop, salt),
        clock=clock,
        salt=salt,
        job_clock=JobClock(job_queued_seconds, job_processing_seconds),
        deletion_delay=deletion_delay_seconds,
        faults=faults,
        api_keys={DEFAULT_API_KEY: ALL_SCOPES, READ_ONLY_API_KEY: READ_SCOPES},
    )
    secret = hashlib.sha256(f"klaviyo-cursor-{salt}-{shop.name}".encode()).digest()
    api = KlaviyoApi(state, RateLimiter(limits, clock), CursorCodec(secret), faults)
    log = RequestLog(keep_bodies=keep_bodies)
    app = SimulatorMiddleware(create_app(api), log, faults, render_error)
    return Simulator(
        vendor="klaviyo",
        app=app,
        log=log,
        faults=faults,
        limits=limits,
        state=state,
        credentials={"api_key": DEFAULT_API_KEY, "read_only_api_key": READ_ONLY_API_KEY},
        base_path="",
    )
