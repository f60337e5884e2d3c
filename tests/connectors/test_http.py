"""The shared HTTP layer against a real loopback server (the simulators' harness)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.base import ConnectorSettings
from connectors.http import (
    AuthFailed,
    ConcurrencyLimiter,
    CostBucket,
    HttpClient,
    Outcome,
    RetryableError,
    RetryPolicy,
    Verdict,
    WindowLimiter,
    in_flight,
    json_body,
    window_limiter,
)
from connectors.limits import Window
from connectors.paginate import (
    CursorLinkPaginator,
    GraphQLPaginator,
    OffsetPaginator,
    PageRequest,
    iterate_pages,
)
from simulators.harness import Faults, RequestLog, SimulatorMiddleware, SimulatorServer

ROWS = list(range(23))


async def _items(request: Request) -> JSONResponse:
    await asyncio.sleep(float(request.query_params.get("sleep", 0)))
    offset = int(request.query_params.get("offset", 0))
    count = int(request.query_params.get("count", 10))
    return JSONResponse({"items": ROWS[offset : offset + count], "total_items": len(ROWS)})


async def _linked(request: Request) -> JSONResponse:
    page = int(request.query_params.get("page", 0))
    base = str(request.base_url).rstrip("/")
    nxt = f"{base}/linked?page={page + 1}" if page < 2 else None
    return JSONResponse({"data": [page], "links": {"next": nxt}})


async def _graphql(request: Request) -> JSONResponse:
    after = (await request.json()).get("variables", {}).get("after")
    index = 0 if after is None else int(after) + 1
    info = {"hasNextPage": index < 3, "endCursor": str(index)}
    cost = {"throttleStatus": {"maximumAvailable": 50.0, "currentlyAvailable": 7.0, "restoreRate": 5.0}}
    return JSONResponse(
        {"data": {"things": {"nodes": [index], "pageInfo": info}}, "extensions": {"cost": cost}}
    )


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"code": code, "detail": detail}, status_code=status)


@pytest.fixture
def server() -> Iterator[tuple[SimulatorServer, RequestLog, Faults]]:
    log, faults = RequestLog(), Faults()
    routes = [
        Route("/items", _items),
        Route("/linked", _linked),
        Route("/graphql", _graphql, methods=["POST"]),
    ]
    app = SimulatorMiddleware(Starlette(routes=routes), log, faults, _error)
    with SimulatorServer(app) as srv:
        yield srv, log, faults


def classify(response: httpx.Response) -> Verdict:
    if response.status_code == 429:
        return Verdict(Outcome.RATE_LIMITED, float(response.headers.get("retry-after", 1)), "throttled")
    if response.status_code == 401:
        return Verdict(Outcome.AUTH_FAILED, message="bad key")
    if response.status_code >= 500:
        return Verdict(Outcome.RETRY, message="server error")
    return Verdict(Outcome.OK)


def _client(url: str, limiter, **kw) -> HttpClient:
    return HttpClient(name="test", base_url=url, classify=classify, limiter=limiter, **kw)


def test_429_storm_is_waited_out_exactly_as_told(server) -> None:
    srv, log, faults = server
    faults.error_status, faults.error_burst, faults.retry_after_seconds = 429, 3, 1

    async def run() -> None:
        client = _client(srv.url, ConcurrencyLimiter(4))
        responses = await asyncio.gather(*(client.request("GET", "/items", limit_key="x") for _ in range(3)))
        assert all(r.status_code == 200 for r in responses)
        await client.aclose()

    asyncio.run(run())
    entries = log.entries()
    throttled = [e for e in entries if e.status == 429]
    assert len(throttled) == 3
    first_429 = min(e.finished for e in throttled)
    later = [e for e in entries if e.started > first_429 and e.status == 200]
    assert later and all(e.started - first_429 >= 1.0 for e in later)


def test_window_limiter_never_exceeds_the_window(server) -> None:
    srv, log, _ = server

    async def run() -> None:
        client = _client(srv.url, WindowLimiter({"items": [Window(5, 0.5)]}))
        await asyncio.gather(*(client.request("GET", "/items", limit_key="items") for _ in range(16)))
        await client.aclose()

    asyncio.run(run())
    starts = sorted(e.started for e in log.entries())
    assert len(starts) == 16
    for i, t in enumerate(starts):
        assert sum(1 for s in starts[i:] if s < t + 0.5 - 0.02) <= 5
    assert starts[-1] - starts[0] >= 1.0  # 16 requests at 5 per 0.5 s need at least three refills


def _settings(**options: object) -> ConnectorSettings:
    return ConnectorSettings(name="shop", base_url=None, credentials={}, streams=(), options=options)


def test_client_limits_off_sends_a_full_window_at_once_but_still_waits_out_a_429(server) -> None:
    srv, log, faults = server
    hour = {"items": [Window(5, 3600)]}  # documented windows would hold request 6 for an hour

    async def run() -> None:
        client = _client(srv.url, window_limiter(_settings(client_limits=False), hour))
        await asyncio.gather(*(client.request("GET", "/items", limit_key="items") for _ in range(16)))
        faults.error_status, faults.error_burst, faults.retry_after_seconds = 429, 1, 1
        await client.request("GET", "/items", limit_key="items")
        await client.aclose()

    started = time.monotonic()
    asyncio.run(run())
    assert 1.0 <= time.monotonic() - started < 30
    statuses = [e.status for e in log.entries()]
    assert (statuses.count(200), statuses.count(429)) == (17, 1)


def test_client_limits_are_on_unless_switched_off_and_a_bad_value_is_named() -> None:
    hour = {"items": [Window(5, 3600)]}
    assert window_limiter(_settings(), hour).enabled
    assert window_limiter(_settings(rate_scale=0.5), hour).windows["items"] == (Window(2, 3600),)
    with pytest.raises(ValueError, match=r"connector shop: options\.client_limits must be true or false"):
        window_limiter(_settings(client_limits="no"), hour)


def test_concurrency_cap_holds(server) -> None:
    srv, log, _ = server

    async def run() -> None:
        client = _client(srv.url, ConcurrencyLimiter(3))
        await asyncio.gather(*(client.request("GET", "/items?sleep=0.1", limit_key="x") for _ in range(12)))
        await client.aclose()

    asyncio.run(run())
    assert log.max_in_flight == 3


def test_auth_failure_is_not_retried(server) -> None:
    srv, log, faults = server
    faults.auth_fail_after = 0

    async def run() -> None:
        client = _client(srv.url, ConcurrencyLimiter(2))
        with pytest.raises(AuthFailed, match="test: auth_failed"):
            await client.request("GET", "/items", limit_key="x")
        await client.aclose()

    asyncio.run(run())
    assert len(log.entries()) == 1


def test_timeouts_and_5xx_are_retried_for_reads_but_not_for_writes(server) -> None:
    srv, log, faults = server
    faults.hang_seconds, faults.hang_count = 0.6, 1
    faults.error_status = 503
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.05)

    async def run() -> None:
        client = _client(srv.url, ConcurrencyLimiter(2), timeout_seconds=0.3, retry=policy)
        assert (await client.request("GET", "/items", limit_key="x")).status_code == 200
        faults.error_burst = 1
        with pytest.raises(RetryableError):
            await client.request("POST", "/graphql", json={}, limit_key="x", idempotent=False)
        await client.aclose()

    asyncio.run(run())
    time.sleep(0.5)  # let the server finish logging the request the client gave up on
    gets = [e for e in log.entries() if e.method == "GET"]
    posts = [e for e in log.entries() if e.method == "POST"]
    assert len(gets) == 2 and max(e.duration for e in gets) >= 0.6  # timed out once, then retried
    assert [e.status for e in posts] == [503]  # the write was not repeated


def test_offset_paginator_with_overlapping_stride_reads_everything(server) -> None:
    srv, _, _ = server

    async def run() -> list[int]:
        client = _client(srv.url, ConcurrencyLimiter(2))
        paginator = OffsetPaginator(limit=10, stride=8, total_path=("total_items",))
        seen: list[int] = []
        first = paginator.first(PageRequest("/items"))
        async for _, body in iterate_pages(
            client, first, paginator, limit_key="x", count_records=lambda b: len(b["items"])
        ):
            seen.extend(body["items"])
        await client.aclose()
        return seen

    seen = asyncio.run(run())
    assert sorted(set(seen)) == ROWS
    assert len(seen) > len(ROWS)  # the overlap re-read rows


def test_cursor_link_and_graphql_paginators_follow_to_the_end(server) -> None:
    srv, _, _ = server

    async def run() -> tuple[list[int], list[int], float]:
        bucket = CostBucket(restore_rate=100.0)
        bucket.status_reader = lambda r: r.json().get("extensions", {}).get("cost", {}).get("throttleStatus")
        client = _client(srv.url, bucket)
        linked = [
            body["data"][0]
            async for _, body in iterate_pages(
                client, PageRequest("/linked"), CursorLinkPaginator(), limit_key="x", count_records=len
            )
        ]
        first = PageRequest("/graphql", method="POST", json={"query": "{ things }", "variables": {}})
        nodes = [
            body["data"]["things"]["nodes"][0]
            async for _, body in iterate_pages(
                client, first, GraphQLPaginator(("data", "things")), limit_key="x", count_records=len
            )
        ]
        await client.aclose()
        return linked, nodes, bucket.restore_rate

    linked, nodes, rate = asyncio.run(run())
    assert linked == [0, 1, 2]
    assert nodes == [0, 1, 2, 3]
    assert rate == 5.0  # learned from the response's throttleStatus


def test_cost_bucket_waits_for_points_to_restore() -> None:
    async def run() -> float:
        bucket = CostBucket(restore_rate=10.0, capacity=10.0)
        started = time.monotonic()
        for _ in range(3):
            async with bucket.hold("q", cost=10.0):
                pass
        return time.monotonic() - started

    assert asyncio.run(run()) >= 1.9  # 30 points from a 10-point bucket restoring 10/s


def test_cost_bucket_keeps_the_points_of_calls_still_in_flight_spent() -> None:
    """A status that does not charge a call still running yet must not hand its points out again."""

    async def run() -> tuple[bool, bool]:
        bucket = CostBucket(restore_rate=0.001, capacity=100.0)
        bucket.status_reader = lambda _r: {
            "maximumAvailable": 100,
            "currentlyAvailable": 50,
            "restoreRate": 0.001,
        }
        async with bucket.hold("q", cost=10.0):  # still in flight when another call's status arrives
            bucket.observe(httpx.Response(200))
        async with asyncio.timeout(1):
            async with bucket.hold("q", cost=40.0):
                fits = True
        try:
            async with asyncio.timeout(0.2):
                async with bucket.hold("q", cost=1.0):  # 50 - 10 in flight - 40 = 0 points left
                    pass
            overspent = True
        except TimeoutError:
            overspent = False
        return fits, overspent

    assert asyncio.run(run()) == (True, False)


def test_in_flight_keeps_order_caps_concurrency_and_raises_the_first_error() -> None:
    running = 0
    peak = 0

    async def call(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.001 * (n % 3))
        finally:
            running -= 1
        if n == 7:
            raise ValueError("record 7")
        return n * n

    assert asyncio.run(in_flight(range(7), call, 3)) == [n * n for n in range(7)]
    assert peak == 3
    with pytest.raises(ValueError, match="record 7"):
        asyncio.run(in_flight(range(20), call, 4))
    assert running == 0  # the calls still running were cancelled, none left behind


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": [1, 2.5, "\xc3\xa9"], "b": null}',
        b'{"total": NaN, "x": Infinity}',  # not JSON, but what `json` took before: same values
        b'{"name": "\\ud800"}',  # a lone surrogate, which pydantic-core refuses
        b'{"id": 123456789012345678901234567890}',  # past 64 bits
        '{"k": "v"}'.encode("utf-16"),  # another encoding JSON allows
    ],
)
def test_json_body_decodes_what_json_decodes(body: bytes) -> None:
    decoded = json_body(httpx.Response(200, content=body))
    # compared as text: NaN equals NaN only there, and an int turned float would print otherwise
    assert json.dumps(decoded) == json.dumps(json.loads(body))


def test_json_body_decodes_once_and_refuses_what_is_not_json() -> None:
    response = httpx.Response(200, content=b'{"data": []}')
    assert json_body(response) is json_body(response)  # the classifier and the caller share one decode
    with pytest.raises(ValueError):
        json_body(httpx.Response(200, content=b"<html>busy</html>"))
