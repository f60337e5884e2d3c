"""What every vendor simulator shares: a loopback server, a request log, fault injection, limiters.

The simulators share this module with each other and nothing with `connectors/`: a bug in code the
client and the fake both used would hide itself.

A simulator is a Starlette app wrapped by `SimulatorMiddleware`, which records every request in a
`RequestLog` (so tests can assert "no request changed consent" or "never more than 10 at once") and
applies the generic faults in `Faults` before the vendor code runs. Vendor-specific faults (a
malformed record in a page, a 422 for one record of a batch) are read from the same `Faults` object by
the vendor code itself. Error bodies are vendor-specific, so the middleware asks the vendor's
`error_response` callable to render them.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ErrorRenderer = Callable[[int, str, str], Response]
"""(http status, short code, human detail) -> the vendor's error response."""


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int
    started: float  # time.monotonic() when the request arrived
    finished: float
    in_flight: int  # requests in flight (this one included) when it arrived
    body: bytes | None = None

    @property
    def duration(self) -> float:
        return self.finished - self.started

    @property
    def is_write(self) -> bool:
        return self.method not in ("GET", "HEAD", "OPTIONS")


class RequestLog:
    """Thread-safe record of every request a simulator answered."""

    def __init__(self, keep_bodies: bool = False) -> None:
        self.keep_bodies = keep_bodies
        self._entries: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0

    def enter(self) -> int:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return self._in_flight

    def leave(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._in_flight -= 1
            self._entries.append(entry)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def writes(self) -> list[LoggedRequest]:
        return [e for e in self.entries() if e.is_write]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.max_in_flight = self._in_flight


@dataclass
class Faults:
    """Faults a test or benchmark switches on for one run. All off by default.

    Generic ones are applied by the middleware; the `*_records` / paging ones by vendor code.
    """

    # Answer the next N matching requests with this status (e.g. 503 bursts, 429 storms).
    error_status: int = 503
    error_burst: int = 0
    error_path_prefix: str = ""  # only requests whose path starts with this
    retry_after_seconds: int | None = None  # sent with injected 429s where the vendor sends it
    slow_seconds: float = 0.0  # delay every response
    hang_seconds: float = 0.0  # delay the next `hang_count` responses (client timeouts)
    hang_count: int = 0
    auth_fail_after: int | None = None  # 401 for every request after this many succeeded
    malformed_every: int | None = None  # every Nth record in a page is malformed
    duplicate_across_pages: bool = False  # repeat the last record of a page on the next page
    update_while_paging: int = 0  # touch N records (bump their updated time) after each page
    reject_records: set[str] = field(default_factory=set)  # ids/emails a batch write rejects (422)

    def take_error(self, path: str) -> bool:
        if self.error_burst > 0 and path.startswith(self.error_path_prefix):
            self.error_burst -= 1
            return True
        return False

    def take_hang(self) -> float:
        if self.hang_count > 0:
            self.hang_count -= 1
            return self.hang_seconds
        return 0.0


class SimulatorMiddleware:
    """Logs requests, counts concurrency and applies the generic `Faults` before the vendor app."""

    def __init__(
        self,
        app: ASGIApp,
        log: RequestLog,
        faults: Faults,
        render_error: ErrorRenderer,
    ) -> None:
        self.app = app
        self.log = log
        self.faults = faults
        self.render_error = render_error
        self._served = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        in_flight = self.log.enter()
        status_holder = [0]
        body_chunks: list[bytes] = []

        async def logging_receive() -> Message:
            message = await receive()
            if self.log.keep_bodies and message["type"] == "http.request":
                body_chunks.append(message.get("body", b""))
            return message

        logged = [False]

        def record() -> None:
            """Log the request once, before its last byte leaves: a client that reads the log right
            after its response must find the request there."""
            if logged[0]:
                return
            logged[0] = True
            self.log.leave(
                LoggedRequest(
                    method=scope["method"],
                    path=scope["path"],
                    query=scope.get("query_string", b"").decode("latin-1"),
                    status=status_holder[0],
                    started=started,
                    finished=time.monotonic(),
                    in_flight=in_flight,
                    body=b"".join(body_chunks) if self.log.keep_bodies else None,
                )
            )

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                if _bodiless(scope, message):  # the client has it all once the head is out
                    record()
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                record()
            await send(message)

        try:
            injected = self._injected_fault(scope)
            delay = self.faults.slow_seconds + self.faults.take_hang()
            if delay:
                await asyncio.sleep(delay)
            if injected is not None:
                await injected(scope, logging_receive, logging_send)
            else:
                await self.app(scope, logging_receive, logging_send)
        finally:
            record()

    def _injected_fault(self, scope: Scope) -> Response | None:
        path = scope["path"]
        if self.faults.auth_fail_after is not None:
            if self._served >= self.faults.auth_fail_after:
                return self.render_error(401, "authentication_failed", "Injected: credentials revoked.")
            self._served += 1
        if self.faults.take_error(path):
            response = self.render_error(self.faults.error_status, "injected", "Injected fault.")
            if self.faults.error_status == 429 and self.faults.retry_after_seconds is not None:
                response.headers["Retry-After"] = str(self.faults.retry_after_seconds)
            return response
        return None


class SimulatorServer:
    """Serves one ASGI app with uvicorn on 127.0.0.1 in a background thread.

    `port=0` picks a free port; `url` tells which. Use as a context manager in tests.
    """

    def __init__(self, app: ASGIApp, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this: without it a response written in two parts waits
        # for the client's delayed ACK, about 40 ms per keep-alive request.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind((host, port))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name=f"simulator:{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _serve(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> SimulatorServer:
        """Start serving (a no-op when already started, so `with sim.serve() as srv:` works)."""
        if self._thread.is_alive():
            return self
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"simulator on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Limits:
    """How strictly a simulator enforces the vendor's rate limits: `scale` multiplies every limit
    (2.0 = twice the documented rate); `enabled=False` switches them off for throughput benchmarks."""

    enabled: bool = True
    scale: float = 1.0


def _bodiless(scope: Scope, start: Message) -> bool:
    """Whether a response is complete with its head: a 204 or 304, an answer to HEAD, or a declared
    empty body. The server writes the head at once, so its client may finish before the body message."""
    if start["status"] in (204, 304) or scope["method"] == "HEAD":
        return True
    return any(k.lower() == b"content-length" and v.strip() == b"0" for k, v in start.get("headers", ()))


class FixedWindowLimiter:
    """Counts hits per key in fixed windows (Klaviyo's 1 s burst and 60 s steady windows)."""

    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._counts: dict[Any, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: Any = None) -> tuple[bool, float, int]:
        """Count one hit. Returns (allowed, seconds until the window resets, remaining)."""
        now = self.clock()
        window_index = int(now // self.window)
        reset_in = (window_index + 1) * self.window - now
        with self._lock:
            index, count = self._counts.get(key, (window_index, 0))
            if index != window_index:
                count = 0
            if count >= self.limit:
                self._counts[key] = (window_index, count)
                return False, reset_in, 0
            count += 1
            self._counts[key] = (window_index, count)
            return True, reset_in, self.limit - count


class TokenBucket:
    """A bucket of `capacity` tokens refilled at `rate` per second (Brevo's RPS/RPH limits,
    Shopify's cost bucket). `take` is all-or-nothing."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self._tokens: dict[Any, tuple[float, float]] = defaultdict(lambda: (capacity, clock()))
        self._lock = threading.Lock()

    def available(self, key: Any = None) -> float:
        with self._lock:
            return self._refill(key)

    def _refill(self, key: Any) -> float:
        tokens, last = self._tokens[key]
        now = self.clock()
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        self._tokens[key] = (tokens, now)
        return tokens

    def take(self, amount: float = 1.0, key: Any = None) -> tuple[bool, float]:
        """Take `amount` tokens if they are there. Returns (taken, tokens left afterwards)."""
        with self._lock:
            tokens = self._refill(key)
            if tokens < amount:
                return False, tokens
            self._tokens[key] = (tokens - amount, self.clock())
            return True, tokens - amount

    def give_back(self, amount: float, key: Any = None) -> None:
        with self._lock:
            tokens = self._refill(key)
            self._tokens[key] = (min(self.capacity, tokens + amount), self.clock())

    def seconds_until(self, amount: float, key: Any = None) -> float:
        with self._lock:
            tokens = self._refill(key)
        return max(0.0, (amount - tokens) / self.rate)


class JobClock:
    """Advances async job lifecycles (bulk imports, batches, processes) by elapsed time, so a job
    is `queued` for `queued_seconds`, then `processing` for `processing_seconds`, then done."""

    def __init__(self, queued_seconds: float = 0.2, processing_seconds: float = 0.5) -> None:
        self.queued_seconds = queued_seconds
        self.processing_seconds = processing_seconds

    def phase(self, created: float, now: float | None = None) -> str:
        elapsed = (time.monotonic() if now is None else now) - created
        if elapsed < self.queued_seconds:
            return "queued"
        if elapsed < self.queued_seconds + self.processing_seconds:
            return "processing"
        return "done"


@dataclass
class Simulator:
    """One vendor simulator ready to serve: the wrapped app plus what tests and benchmarks read.

    `state` is the vendor's own store object (tests inspect it to read back what was written);
    `credentials` holds what a client needs to authenticate (key names are vendor-specific, e.g.
    `api_key`, `access_token`, `shop`), and `base_path` is where the API lives under the server root.
    """

    vendor: str
    app: ASGIApp
    log: RequestLog
    faults: Faults
    limits: Limits
    state: Any
    credentials: dict[str, str]
    base_path: str = ""
    # What an operator puts in `base_url` is the vendor's documented base URL, which for most
    # vendors ends in `base_path` but for Shopify is the shop's root (the client adds the version).
    config_path: str | None = None

    def base_url(self, server: SimulatorServer) -> str:
        """The `base_url` a connector is configured with to reach this simulator."""
        return server.url + (self.base_path if self.config_path is None else self.config_path)

    def serve(self, port: int = 0) -> SimulatorServer:
        """Start serving on 127.0.0.1 (a free port when 0); the caller stops the returned server."""
        return SimulatorServer(self.app, port=port).start()
