"""The daemon's HTTP server: liveness, readiness and metrics, plus a place to mount later routes.

It runs uvicorn in a background thread so the scheduler keeps the main thread (and its signal
handlers). It binds to 127.0.0.1 unless told otherwise; on any other address without a bearer token
it logs a loud warning, because `/metrics` and later admin pages would be open to the network.
`/healthz` and `/readyz` never need the token (probes from Docker, systemd or Kubernetes do not carry
one) and say nothing about customers. Routes added with `public=True` (webhooks, which authenticate
with their own HMAC) skip the token too; every other added route requires it when one is set.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, request_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sync.logs import log_event, redact
from sync.metrics import Metrics

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
Endpoint = Callable[[Request], Awaitable[Response] | Response]


class HealthServerError(Exception):
    """The server could not start (address in use, bad bind address)."""


class HealthState:
    """What the probes report. The daemon loop writes it; the server thread only reads it.

    The loop calls `beat()` at least every `stale_after` seconds (a scheduler job every few seconds is
    enough), so a deadlocked loop turns `/healthz` red and lets Docker or systemd restart the process.
    """

    def __init__(self, stale_after: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after = stale_after
        self._clock = clock
        self._last_beat = clock()
        self._stopping = False
        self._failure: str | None = None

    def beat(self) -> None:
        self._last_beat = self._clock()

    def stopping(self) -> None:
        """The loop is shutting down: liveness turns red so nothing routes new work here."""
        self._stopping = True

    def cycle_finished(self, ok: bool, reason: str | None = None) -> None:
        """Record the outcome of the last cycle; `reason` (redacted) is shown by `/readyz` on failure."""
        self._failure = None if ok else redact(reason or "unknown error")

    @property
    def last_cycle_failure(self) -> str | None:
        return self._failure

    def liveness(self) -> tuple[bool, str]:
        """(alive, why) for `/healthz`."""
        silent = self._clock() - self._last_beat
        if self._stopping:
            return False, "shutting down"
        if silent > self.stale_after:
            return False, f"main loop silent for {silent:.0f} s (limit {self.stale_after:.0f} s)"
        return True, f"main loop beat {silent:.1f} s ago"


class BodyLimit:
    """Answers 413 to any request body over `max_bytes`, declared (Content-Length) or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            status = 413 if declared.isdigit() else 400
            await JSONResponse({"error": "request body too large or malformed length"}, status)(
                scope, receive, send
            )
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, f"request body over {self.max_bytes} bytes")
            return message

        await self.app(scope, counting_receive, send)


class TokenGuard:
    """Lets a request through only with `Authorization: Bearer <token>` (compared in constant time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = dict(scope.get("headers", [])).get(b"authorization", b"")
        if hmac.compare_digest(given, self._expected):
            await self.app(scope, receive, send)
            return
        response = JSONResponse({"error": "missing or wrong bearer token"}, 401)
        response.headers["WWW-Authenticate"] = "Bearer"
        await response(scope, receive, send)


class HealthServer:
    """`/healthz`, `/readyz` and `/metrics` served on `host:port` from a background thread."""

    def __init__(
        self,
        *,
        state: HealthState,
        metrics: Metrics,
        store_ping: Callable[[], Any],
        host: str = "127.0.0.1",
        port: int = 8787,
        token: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        store_timeout: float = 5.0,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.host = host
        self._store_ping = store_ping
        self._store_timeout = store_timeout
        self._store_down = False
        self._token = token or None
        self.app = Starlette(
            routes=[Route("/healthz", self._healthz), Route("/readyz", self._readyz)],
            middleware=[Middleware(BodyLimit, max_bytes=max_body_bytes)],
        )
        self.add_route("/metrics", self._metrics)
        self._sock = _listen(host, port)
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", server_header=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name=f"espd-http:{self.port}", daemon=True)
        if self._token is None and not is_loopback(host):
            log_event(
                log,
                "server_exposed_without_token",
                level=logging.WARNING,
                bind=host,
                port=self.port,
                hint="set server.token (or token_file) or bind to 127.0.0.1; /metrics is open to the network",
            )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def add_route(
        self, path: str, endpoint: Endpoint, *, methods: Sequence[str] = ("GET",), public: bool = False
    ) -> None:
        """Serve `endpoint` at `path`; it needs the bearer token (when set) unless `public`."""
        target = endpoint if self._open(public) else self._guard(request_response(endpoint))
        self.app.router.routes.append(Route(path, target, methods=methods))

    def mount(self, path: str, app: ASGIApp, *, public: bool = False) -> None:
        """Serve a whole ASGI app (a dashboard, say) under `path`, behind the token unless `public`."""
        self.app.router.routes.append(Mount(path, app=app if self._open(public) else self._guard(app)))

    def _open(self, public: bool) -> bool:
        return public or self._token is None

    def _guard(self, app: ASGIApp) -> ASGIApp:
        return TokenGuard(app, self._token or "")

    async def _healthz(self, request: Request) -> Response:
        alive, why = self.state.liveness()
        return JSONResponse({"alive": alive, "detail": why}, 200 if alive else 503)

    async def _readyz(self, request: Request) -> Response:
        problem = await self._store_problem() or _cycle_problem(self.state)
        if problem:
            return JSONResponse({"ready": False, "reason": problem}, 503)
        return JSONResponse({"ready": True})

    async def _store_problem(self) -> str | None:
        try:
            await asyncio.wait_for(run_in_threadpool(self._store_ping), self._store_timeout)
        except TimeoutError:
            return f"store did not answer within {self._store_timeout:g} s"
        except Exception as exc:
            # Only the class name: a driver message can hold a URL with a password in it. Logged
            # once per outage, not on every probe.
            if not self._store_down:
                log_event(log, "store_unreachable", level=logging.WARNING, error=repr(exc))
            self._store_down = True
            return f"store unreachable ({type(exc).__name__})"
        if self._store_down:
            log_event(log, "store_reachable_again")
        self._store_down = False
        return None

    async def _metrics(self, request: Request) -> Response:
        body, content_type = self.metrics.exposition()
        return Response(body, headers={"Content-Type": content_type})

    def _serve(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> HealthServer:
        """Start serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise HealthServerError(f"the HTTP server on {self.url} did not start")
            time.sleep(0.01)
        log_event(log, "server_started", bind=self.host, port=self.port, token=self._token is not None)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _cycle_problem(state: HealthState) -> str | None:
    failure = state.last_cycle_failure
    return None if failure is None else f"last cycle failed: {failure}"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; any other name or address counts as exposed."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a `HealthServerError` that names the address."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise HealthServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise HealthServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock
