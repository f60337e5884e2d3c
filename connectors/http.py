"""The shared HTTP layer: one client per connector, client-side rate limiting, one retry policy.

Every vendor call goes through `HttpClient.request`, which
1. waits for a slot from the connector's `Limiter` (request windows, a connection cap or a cost
   bucket, configured from `connectors.limits`),
2. sends the request on the connector's single `httpx.AsyncClient`,
3. asks the vendor's one classification function what the response means (`Verdict`), and
4. retries what is retryable with one tenacity policy: it waits what the vendor said (Retry-After,
   rate headers, a computed cost wait) plus jitter, or backs off exponentially, up to a cap.
A rate-limit answer also pauses the whole limiter, so concurrent requests do not hammer the vendor
before the wait is over.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import httpx
import pydantic_core
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from connectors.base import ConnectorSettings, EventSink
from connectors.limits import Window

log = logging.getLogger("espd.connectors.http")
A = TypeVar("A")
T = TypeVar("T")


class Outcome(StrEnum):
    OK = "ok"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    AUTH_FAILED = "auth_failed"
    RECORD_REJECTED = "record_rejected"
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    wait_seconds: float | None = None
    message: str = ""


OK = Verdict(Outcome.OK)
Classifier = Callable[[httpx.Response], Verdict]
"""A vendor's single answer to "what does this response mean"; used for every call it makes."""


_JSON_KEY = "espd.json"


def json_body(response: httpx.Response) -> Any:
    """The response body as JSON, decoded once per response (Shopify's classifier and its caller
    both read it) by pydantic-core's parser with its key cache: a tenth faster than `json` on the
    recorded pages (orjson, a fifth faster, turns integers past 64 bits into floats silently).

    What pydantic-core refuses and `json` takes (a lone surrogate escape, a UTF-16 body) goes to
    `response.json()`, so a body decodes to the same values as before, and raises the same
    `ValueError` when it is not JSON at all.
    """
    if _JSON_KEY not in response.extensions:
        try:
            body = pydantic_core.from_json(response.content, cache_strings="keys")
        except ValueError:
            body = response.json()
        response.extensions[_JSON_KEY] = body
    return response.extensions[_JSON_KEY]


class ApiError(Exception):
    def __init__(self, connector: str, verdict: Verdict, response: httpx.Response | None = None) -> None:
        self.connector = connector
        self.verdict = verdict
        self.status = response.status_code if response is not None else None
        self.response = response
        where = f" (HTTP {self.status})" if self.status else ""
        super().__init__(f"{connector}: {verdict.outcome.value}{where}: {verdict.message}")


class RetryableError(ApiError):
    """Transient: a 5xx, a timeout, a rate limit. The retry policy handles it."""


class AuthFailed(ApiError):
    """Credentials rejected or a permission missing: this connector stops, others go on."""


class RecordRejected(ApiError):
    """The vendor refused this record (or this batch because of one record)."""


class FatalApiError(ApiError):
    """A request espd should never have sent, or a state it cannot recover from."""


_ERRORS: dict[Outcome, type[ApiError]] = {
    Outcome.RETRY: RetryableError,
    Outcome.RATE_LIMITED: RetryableError,
    Outcome.AUTH_FAILED: AuthFailed,
    Outcome.RECORD_REJECTED: RecordRejected,
    Outcome.FATAL: FatalApiError,
}


class Limiter(Protocol):
    def hold(self, key: str, cost: float = 1.0) -> Any:
        """An async context manager that holds one request slot for `key`."""

    def observe(self, response: httpx.Response) -> None:
        """Learn from a response (rate headers, cost buckets)."""

    def pause(self, seconds: float) -> None:
        """Let no request start for `seconds` (after the vendor said so)."""


class _PausableLimiter:
    def __init__(self) -> None:
        self._resume_at = 0.0

    def pause(self, seconds: float) -> None:
        self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    async def _wait_for_resume(self) -> None:
        while (delay := self._resume_at - time.monotonic()) > 0:
            await asyncio.sleep(delay)

    def observe(self, response: httpx.Response) -> None:
        return None


class WindowLimiter(_PausableLimiter):
    """At most `requests` per `seconds` for each window of a key, counted over a sliding window.

    A request counts from the moment it is sent until `seconds` after its response arrived: the
    vendor counts arrivals, which happen somewhere in between, so this never earns a 429 however
    latency varies, and at full load it costs one round trip per window of throughput. Requests
    still in flight are counted apart, so a slow response can never drop out of the window early.

    `enabled=False` lets every request start at once (the vendor's own waits, `pause`, still hold):
    for throughput benchmarks against simulators whose limits are off too, where the documented
    windows (Brevo's 100 requests per HOUR for `GET /orders`) would measure the clock, not espd.
    """

    def __init__(
        self, windows: Mapping[str, Sequence[Window]], scale: float = 1.0, enabled: bool = True
    ) -> None:
        super().__init__()
        self.enabled = enabled
        self.windows = {
            key: tuple(Window(max(1, int(w.requests * scale)), w.seconds) for w in ws)
            for key, ws in windows.items()
        }
        self._done: dict[tuple[str, int], list[float]] = {}  # completion times, sorted
        self._running: dict[str, int] = {}
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def hold(self, key: str, cost: float = 1.0) -> AsyncIterator[None]:
        await self._wait_for_resume()
        windows = self.windows.get(key)
        if windows is None:
            raise KeyError(f"no rate limit configured for {key!r}")
        if not self.enabled:
            yield
            return
        async with self._lock:
            while (delay := self._delay(key, windows)) is not None:
                await asyncio.sleep(delay)
            self._running[key] = self._running.get(key, 0) + 1
        try:
            yield
        finally:
            self._running[key] -= 1
            done = time.monotonic()
            for i in range(len(windows)):
                bisect.insort(self._done.setdefault((key, i), []), done)

    def _delay(self, key: str, windows: Sequence[Window]) -> float | None:
        """Seconds to wait before another request may start (None: now). While the window is full
        of requests still running, wait a little and look again: their completions decide."""
        now = time.monotonic()
        running = self._running.get(key, 0)
        delay: float | None = None
        for i, window in enumerate(windows):
            done = self._done.setdefault((key, i), [])
            del done[: bisect.bisect_right(done, now - window.seconds)]
            excess = len(done) + running - window.requests + 1
            if excess <= 0:
                continue
            wait = done[excess - 1] + window.seconds - now + 0.001 if excess <= len(done) else 0.01
            delay = max(delay or 0.0, wait)
        return delay


def window_limiter(settings: ConnectorSettings, windows: Mapping[str, Sequence[Window]]) -> WindowLimiter:
    """A connector's request windows, shaped by its options, read here so every connector that
    limits by windows reads them alike: `rate_scale` multiplies every window (default 1: as
    documented) and `client_limits: false` switches them off (benchmarks against unlimited simulators).
    """
    enabled = settings.options.get("client_limits", True)
    if not isinstance(enabled, bool):
        raise ValueError(
            f"connector {settings.name}: options.client_limits must be true or false, not {enabled!r}"
        )
    return WindowLimiter(windows, scale=float(settings.options.get("rate_scale", 1.0)), enabled=enabled)


class ConcurrencyLimiter(_PausableLimiter):
    """At most `limit` requests in flight (Mailchimp counts simultaneous connections)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit)

    @asynccontextmanager
    async def hold(self, key: str, cost: float = 1.0) -> AsyncIterator[None]:
        await self._wait_for_resume()
        async with self._semaphore:
            yield


class CostBucket(_PausableLimiter):
    """A client-side copy of a leaky cost bucket (Shopify GraphQL): spend only what is there.

    The vendor's `throttleStatus` in each response resets the estimate, so drift never builds up.
    Requests still in flight when a status arrives may not be charged in it yet: their cost is taken
    off the reported points, so concurrent calls never spend the same points twice.
    """

    def __init__(self, restore_rate: float, capacity: float | None = None) -> None:
        super().__init__()
        self.restore_rate = restore_rate
        self.capacity = capacity if capacity is not None else restore_rate * 20
        self._available = self.capacity
        self._updated = time.monotonic()
        self._in_flight = 0.0
        self._lock = asyncio.Lock()
        self.status_reader: Callable[[httpx.Response], Mapping[str, float] | None] = lambda _r: None

    def _estimate(self) -> float:
        now = time.monotonic()
        self._available = min(self.capacity, self._available + (now - self._updated) * self.restore_rate)
        self._updated = now
        return self._available

    @asynccontextmanager
    async def hold(self, key: str, cost: float = 1.0) -> AsyncIterator[None]:
        await self._wait_for_resume()
        async with self._lock:
            while (missing := cost - self._estimate()) > 0:
                await asyncio.sleep(missing / self.restore_rate)
            self._available -= cost
            self._in_flight += cost
        try:
            yield
        finally:
            self._in_flight -= cost

    def observe(self, response: httpx.Response) -> None:
        status = self.status_reader(response)
        if status:
            self.capacity = float(status["maximumAvailable"])
            self.restore_rate = float(status["restoreRate"])
            self._available = float(status["currentlyAvailable"]) - self._in_flight
            self._updated = time.monotonic()


async def in_flight(items: Iterable[A], call: Callable[[A], Awaitable[T]], limit: int) -> list[T]:
    """`call` on every item with at most `limit` running at once; results in the items' order.

    Serial calls leave a vendor's budget idle for a whole round trip each, and an unbounded gather
    queues every call on the limiter at once (and holds every body in memory): a few calls in flight
    keep the budget busy. The first error cancels the calls still running and is raised.
    """
    pending = iter(enumerate(items))
    results: dict[int, T] = {}

    async def worker() -> None:
        for index, item in pending:
            results[index] = await call(item)

    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, limit))]
    try:
        done, _running = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # raises the first error
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return [results[i] for i in range(len(results))]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    initial_backoff: float = 0.5
    max_backoff: float = 60.0
    jitter: float = 0.25  # up to this share of the wait is added at random


class HttpClient:
    """One connector's HTTP client. Build it once per connector instance and close it at the end."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        classify: Classifier,
        limiter: Limiter,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        timeout_seconds: float = 30.0,
        max_connections: int = 20,
        retry: RetryPolicy = RetryPolicy(),
        sink: EventSink | None = None,
    ) -> None:
        self.name = name
        self.classify = classify
        self.limiter = limiter
        self.retry = retry
        self.sink = sink
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        limit_key: str,
        cost: float = 1.0,
        idempotent: bool = True,
        attempts: int | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with limits and retries; return an OK response or raise an `ApiError`.

        `attempts` caps the tries of this one call below the client's policy, for callers that keep
        their own durable retry (erasure requests wait for the next drain instead of a minute here).
        """
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_retryable if idempotent else _rate_limited),
            wait=self._wait,
            stop=stop_after_attempt(min(attempts or self.retry.max_attempts, self.retry.max_attempts)),
            before_sleep=self._before_sleep,
            reraise=True,
        ):
            with attempt:
                return await self._send_once(method, url, limit_key, cost, kwargs)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _send_once(
        self, method: str, url: str, limit_key: str, cost: float, kwargs: dict[str, Any]
    ) -> httpx.Response:
        started = time.monotonic()
        try:
            async with self.limiter.hold(limit_key, cost):
                response = await self._client.request(method, url, **kwargs)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            self._emit(
                "http_request", status="transport_error", key=limit_key, seconds=time.monotonic() - started
            )
            raise RetryableError(self.name, Verdict(Outcome.RETRY, None, type(exc).__name__)) from exc
        self.limiter.observe(response)
        self._emit(
            "http_request",
            status=str(response.status_code),
            key=limit_key,
            seconds=time.monotonic() - started,
        )
        verdict = self.classify(response)
        if verdict.outcome is Outcome.OK:
            return response
        if verdict.outcome is Outcome.RATE_LIMITED and verdict.wait_seconds:
            self.limiter.pause(verdict.wait_seconds)
        raise _ERRORS[verdict.outcome](self.name, verdict, response)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        told = error.verdict.wait_seconds if isinstance(error, ApiError) else None
        if told is not None:
            base = told
        else:
            base = min(self.retry.max_backoff, self.retry.initial_backoff * 2 ** (state.attempt_number - 1))
        return min(self.retry.max_backoff, base) * (1 + random.uniform(0, self.retry.jitter))

    def _before_sleep(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0.0
        if isinstance(error, ApiError) and error.verdict.outcome is Outcome.RATE_LIMITED:
            self._emit("rate_limit_wait", seconds=seconds)
        log.info(
            "event=http_retry connector=%s attempt=%d wait=%.2f reason=%s",
            self.name,
            state.attempt_number,
            seconds,
            error.verdict.message if isinstance(error, ApiError) else type(error).__name__,
        )

    def _emit(self, event: str, **fields: Any) -> None:
        if self.sink is not None:
            self.sink(event, connector=self.name, **fields)


def _retryable(error: BaseException) -> bool:
    return isinstance(error, RetryableError)


def _rate_limited(error: BaseException) -> bool:
    """A non-idempotent write is repeated only when the vendor said it did not take it (429)."""
    return isinstance(error, RetryableError) and error.verdict.outcome is Outcome.RATE_LIMITED
