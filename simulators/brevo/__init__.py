"""A strict local simulator of the Brevo API v3 (contacts, attributes, imports, campaigns, orders).

    sim = build(shop)                      # or build() for an empty account
    with sim.serve() as server:
        httpx.get(server.url + sim.base_path + "/contacts", headers={"api-key": sim.credentials["api_key"]})

What it enforces (notes/brevo.md section 7): the `api-key` header; per-family RPS and RPH token
buckets with `x-sib-ratelimit-*` headers and header-only 429s; per-endpoint `limit` caps; creation
order with `desc` default; strict `modifiedSince` parsing and "after" semantics; no snapshot
isolation; `modifiedAt` bumped by every write; attribute category/type rules; silent drops of
wrongly typed values; all-or-nothing `/contacts/batch`; the import process lifecycle; DELETE rules;
`/events` validation; 204 empty bodies. Timestamps carry milliseconds and, by default, a `+02:00`
offset so clients must parse offsets.

Vendor options of `build`:
- `batch_retired` (default True): `/contacts/batch` answers 404, as the API may since its
  announced retirement on 2026-10-30 (the project's today is later). Pass False to test it.
- `too_early_seconds` (default 2.0): a PUT within this many seconds of a contact's creation by an
  import answers 425.
- `time_offset` (default +02:00): the offset timestamps are written in (timedelta(0) gives `Z`).
- `clock` (monotonic seconds) / `now` (wall time): injectable time sources for rate limits, job
  phases and the 425 window (`clock`), and
  `modifiedAt` (tests advance a fake clock instead of sleeping).
- `job_clock`: phase lengths of import processes; `import_max_bytes` (default 10,000,000);
  `call_notify_url` (default True); `api_key`; `account_email` (the owner: DELETE answers 405).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

from starlette.responses import Response

from simulators.brevo.app import BASE_PATH, build_app
from simulators.brevo.context import Context, Options
from simulators.brevo.errors import error_response
from simulators.brevo.ratelimits import RateLimiter, rate_headers
from simulators.brevo.state import BrevoState
from simulators.dataset import ShopData
from simulators.harness import Faults, JobClock, Limits, RequestLog, Simulator, SimulatorMiddleware

DEFAULT_API_KEY = (
    "xkeysib-espd-simulator-0000000000000000000000000000000000000000000000000000000000000000-sim"
)
DEFAULT_ACCOUNT_EMAIL = "owner@espd-shop.example"

__all__ = ["BASE_PATH", "DEFAULT_API_KEY", "BrevoState", "build"]


def build(
    shop: ShopData | None = None,
    *,
    limits: Limits | None = None,
    faults: Faults | None = None,
    keep_bodies: bool = False,
    api_key: str = DEFAULT_API_KEY,
    account_email: str = DEFAULT_ACCOUNT_EMAIL,
    batch_retired: bool = True,
    too_early_seconds: float = 2.0,
    time_offset: timedelta = timedelta(hours=2),
    job_clock: JobClock | None = None,
    import_max_bytes: int = 10_000_000,
    call_notify_url: bool = True,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Simulator:
    """A Brevo simulator seeded from `shop` (people on brevo, their orders and campaign events)."""
    limits = limits or Limits()
    faults = faults or Faults()
    state = BrevoState(now=now, monotonic=clock, offset=time_offset, account_email=account_email)
    if shop is not None:
        state.seed(shop)
    options = Options(
        batch_retired=batch_retired,
        too_early_seconds=too_early_seconds,
        import_max_bytes=import_max_bytes,
        job_clock=job_clock or JobClock(queued_seconds=0.2, processing_seconds=0.5),
        call_notify_url=call_notify_url,
    )
    context = Context(state=state, faults=faults, options=options)
    log = RequestLog(keep_bodies=keep_bodies)
    app = build_app(context, RateLimiter(limits, clock), api_key)
    wrapped = SimulatorMiddleware(app, log, faults, partial(_injected_error, faults))
    return Simulator(
        vendor="brevo",
        app=wrapped,
        log=log,
        faults=faults,
        limits=limits,
        state=state,
        credentials={"api_key": api_key},
        base_path=BASE_PATH,
    )


def _injected_error(faults: Faults, status: int, code: str, detail: str) -> Response:
    """A harness fault in Brevo's shape; an injected 429 carries the `x-sib-ratelimit-*` headers a
    real one does, with `reset` = the storm's `retry_after_seconds` (at least 1)."""
    response = error_response(status, code, detail)
    if status == 429:
        response.headers.update(rate_headers(10, 0, max(1, faults.retry_after_seconds or 1)))
    return response
