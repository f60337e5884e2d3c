"""The daemon's HTTP server over real loopback HTTP: probes, metrics, token, body limit, bind warning."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from sync.health import HealthServer, HealthServerError, HealthState, is_loopback
from sync.metrics import Metrics

TOKEN = "t0ken-for-tests-9f8e7d"


class Clock:
    """A clock the test moves by hand, so staleness is decided without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sqlite_ping(path: Path) -> object:
    """A real store check: connect to a SQLite file and run SELECT 1."""
    engine = create_engine(f"sqlite:///{path}")

    def ping() -> object:
        with engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar_one()

    return ping


@pytest.fixture
def server(tmp_path: Path) -> Iterator[HealthServer]:
    with HealthServer(
        state=HealthState(stale_after=60, clock=Clock()),
        metrics=Metrics(),
        store_ping=_sqlite_ping(tmp_path / "espd.sqlite"),
        port=0,
    ) as running:
        yield running


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[HealthServer]:
    with HealthServer(
        state=HealthState(),
        metrics=Metrics(),
        store_ping=_sqlite_ping(tmp_path / "espd.sqlite"),
        port=0,
        token=TOKEN,
        max_body_bytes=1000,
    ) as running:
        yield running


def test_healthz_is_green_while_the_loop_beats_and_red_when_it_goes_silent_or_stops(
    server: HealthServer,
) -> None:
    clock: Clock = server.state._clock  # type: ignore[assignment]
    ok = httpx.get(f"{server.url}/healthz")
    assert ok.status_code == 200 and ok.json()["alive"] is True

    clock.now += 61
    stale = httpx.get(f"{server.url}/healthz")
    assert stale.status_code == 503
    assert stale.json() == {"alive": False, "detail": "main loop silent for 61 s (limit 60 s)"}

    server.state.beat()
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    server.state.stopping()
    assert httpx.get(f"{server.url}/healthz").json() == {"alive": False, "detail": "shutting down"}


def test_readyz_reports_a_failed_cycle_without_the_customer_in_the_reason(server: HealthServer) -> None:
    assert httpx.get(f"{server.url}/readyz").json() == {"ready": True}

    server.state.cycle_finished(False, "push to klaviyo rejected bob@example.com")
    failed = httpx.get(f"{server.url}/readyz")
    assert failed.status_code == 503
    assert failed.json() == {"ready": False, "reason": "last cycle failed: push to klaviyo rejected [email]"}

    server.state.cycle_finished(True)
    assert httpx.get(f"{server.url}/readyz").status_code == 200


def test_readyz_is_red_while_the_store_cannot_be_reached_and_logs_the_outage_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store_dir = tmp_path / "not-yet"
    unreachable = _sqlite_ping(store_dir / "espd.sqlite")
    caplog.set_level(logging.INFO, logger="sync.health")
    with HealthServer(state=HealthState(), metrics=Metrics(), store_ping=unreachable, port=0) as server:
        answers = [httpx.get(f"{server.url}/readyz") for _ in range(3)]
        store_dir.mkdir()
        recovered = httpx.get(f"{server.url}/readyz")
    assert {a.status_code for a in answers} == {503}
    assert answers[0].json() == {"ready": False, "reason": "store unreachable (OperationalError)"}
    assert recovered.status_code == 200
    events = [r.getMessage().split()[0] for r in caplog.records if r.name == "sync.health"]
    assert events.count("event=store_unreachable") == 1
    assert events.count("event=store_reachable_again") == 1


def test_readyz_is_red_when_the_store_hangs() -> None:
    release = threading.Event()
    with HealthServer(
        state=HealthState(), metrics=Metrics(), store_ping=lambda: release.wait(5), port=0, store_timeout=0.2
    ) as hanging:
        answer = httpx.get(f"{hanging.url}/readyz")
        release.set()
    assert answer.status_code == 503
    assert answer.json()["reason"] == "store did not answer within 0.2 s"


def test_metrics_are_exposed_in_the_prometheus_text_format(server: HealthServer) -> None:
    server.metrics.count_records("klaviyo", "profiles", "pulled", 100)
    answer = httpx.get(f"{server.url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    assert 'espd_records_total{connector="klaviyo",outcome="pulled",stream="profiles"} 100.0' in answer.text


def test_the_token_guards_metrics_and_added_routes_but_not_probes_or_public_routes(
    guarded: HealthServer,
) -> None:
    async def admin(request: Request) -> Response:
        return PlainTextResponse("admin page")

    guarded.add_route("/admin", admin)
    guarded.add_route("/webhooks/{topic}", admin, methods=["POST"], public=True)
    good = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/metrics", "/admin"):
        missing = httpx.get(guarded.url + path)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert httpx.get(guarded.url + path, headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 401
        assert httpx.get(guarded.url + path, headers={"Authorization": TOKEN}).status_code == 401
        assert httpx.get(guarded.url + path, headers=good).status_code == 200
    assert httpx.get(f"{guarded.url}/healthz").status_code == 200
    assert httpx.get(f"{guarded.url}/readyz").status_code == 200
    assert httpx.post(f"{guarded.url}/webhooks/customers-redact", content=b"{}").text == "admin page"


def test_mounted_apps_sit_behind_the_token_too(guarded: HealthServer) -> None:
    async def dashboard(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await PlainTextResponse(f"dashboard at {scope['path']}")(scope, receive, send)

    guarded.mount("/dashboard", dashboard)
    assert httpx.get(f"{guarded.url}/dashboard/customers").status_code == 401
    answer = httpx.get(f"{guarded.url}/dashboard/customers", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.text == "dashboard at /dashboard/customers"


def test_request_bodies_over_the_limit_are_refused_whether_declared_or_streamed(
    guarded: HealthServer,
) -> None:
    async def echo_length(request: Request) -> Response:
        return JSONResponse({"received": len(await request.body())})

    guarded.add_route("/echo", echo_length, methods=["POST"], public=True)
    assert httpx.post(f"{guarded.url}/echo", content=b"x" * 1000).json() == {"received": 1000}

    declared = httpx.post(f"{guarded.url}/echo", content=b"x" * 1001)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked, counted as it arrives
        yield from (b"y" * 400 for _ in range(3))

    streamed = httpx.post(f"{guarded.url}/echo", content=chunks())
    assert streamed.status_code == 413
    assert "over 1000 bytes" in streamed.text


def test_binding_beyond_loopback_without_a_token_warns_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ping = _sqlite_ping(tmp_path / "espd.sqlite")
    with caplog.at_level(logging.WARNING, logger="sync.health"):
        exposed = HealthServer(
            state=HealthState(), metrics=Metrics(), store_ping=ping, host="0.0.0.0", port=0
        )
        exposed.stop()
        quiet = HealthServer(
            state=HealthState(), metrics=Metrics(), store_ping=ping, host="0.0.0.0", port=0, token=TOKEN
        )
        quiet.stop()
        local = HealthServer(state=HealthState(), metrics=Metrics(), store_ping=ping, port=0)
        local.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"event=server_exposed_without_token bind=0.0.0.0 port={exposed.port}")


def test_an_address_in_use_is_a_clear_error(server: HealthServer) -> None:
    with pytest.raises(
        HealthServerError, match=f"cannot listen on 127.0.0.1:{server.port}: Address already in use"
    ):
        HealthServer(state=HealthState(), metrics=Metrics(), store_ping=lambda: 1, port=server.port)


def test_stopping_closes_the_port(tmp_path: Path) -> None:
    running = HealthServer(
        state=HealthState(), metrics=Metrics(), store_ping=_sqlite_ping(tmp_path / "s.sqlite"), port=0
    ).start()
    assert httpx.get(f"{running.url}/healthz").status_code == 200
    running.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{running.url}/healthz")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("espd.internal", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
