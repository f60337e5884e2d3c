"""Klaviyo specifics the contract suite does not cover: error classification, value rendering, cursor
capping, import-error matching, scopes in check(), events and bulk jobs against the simulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.base import ConnectorSettings
from connectors.http import Outcome
from connectors.klaviyo import KlaviyoConnector
from connectors.klaviyo.api import capped, classify
from connectors.klaviyo.jobs import JobWatcher, PollPolicy
from connectors.klaviyo.push import match_errors, render
from connectors.records import EngagementEvent, FieldUpdate, Order
from simulators import klaviyo, shops
from simulators.harness import Limits, Simulator, SimulatorServer


def _response(
    status: int, body: Any = None, *, method: str = "GET", path: str = "/api/profiles", **headers: str
):
    request = httpx.Request(method, f"http://sim{path}")
    content = body if isinstance(body, str) else json.dumps(body or {})
    return httpx.Response(status, content=content, headers=headers, request=request)


def _error(code: str, detail: str = "d", **source: str) -> dict[str, Any]:
    return {"errors": [{"id": "1", "code": code, "title": "t", "detail": detail, "source": source}]}


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        (_response(200), Outcome.OK),
        (_response(202, method="POST"), Outcome.OK),
        (_response(429, _error("throttled"), **{"Retry-After": "3"}), Outcome.RATE_LIMITED),
        (_response(401, _error("not_authenticated")), Outcome.AUTH_FAILED),
        (_response(401, _error("authentication_failed")), Outcome.AUTH_FAILED),
        (_response(403, _error("permission_denied", "missing profiles:write")), Outcome.AUTH_FAILED),
        (_response(403, "<html>Just a moment</html>", **{"cf-mitigated": "challenge"}), Outcome.RETRY),
        (_response(500, _error("error")), Outcome.RETRY),
        (_response(503, _error("error")), Outcome.RETRY),
        (_response(524, "<html>524</html>"), Outcome.RETRY),
        (_response(400, _error("invalid", parameter="filter")), Outcome.FATAL),
        (_response(415, _error("unsupported_media_type"), method="POST"), Outcome.FATAL),
        (_response(404, _error("not_found"), path="/api/profile-bulk-import-jobs/x"), Outcome.FATAL),
        (
            _response(400, _error("invalid", pointer="/data/attributes/email"), method="POST"),
            Outcome.RECORD_REJECTED,
        ),
        (
            _response(404, _error("not_found"), method="POST", path="/api/profile-import"),
            Outcome.RECORD_REJECTED,
        ),
        (
            _response(409, _error("duplicate_profile", pointer="/data"), method="POST"),
            Outcome.RECORD_REJECTED,
        ),
    ],
)
def test_every_documented_response_shape_is_classified(response: httpx.Response, outcome: Outcome) -> None:
    assert classify(response).outcome is outcome


def test_throttle_waits_what_retry_after_says_and_messages_hide_emails() -> None:
    assert classify(_response(429, _error("throttled"), **{"Retry-After": "3"})).wait_seconds == 3.0
    verdict = classify(
        _response(400, _error("invalid", "bad a.person@example.com", pointer="/data"), method="POST")
    )
    assert "example.com" not in verdict.message and "<email>" in verdict.message
    assert "/data" in verdict.message


def test_rendering_keeps_espd_properties_unsets_none_and_refuses_the_rest() -> None:
    update = FieldUpdate(
        destination="klaviyo",
        customer_vendor_id="01ABC",
        values={"espd_churn_risk": 0.25, "espd_next_order": "2026-12-24", "espd_vip": True, "espd_old": None},
    )
    entry, encoded = render(update)
    assert (
        json.loads(encoded)
        == entry
        == {
            "type": "profile",
            "id": "01ABC",
            "attributes": {
                "properties": {"espd_churn_risk": 0.25, "espd_next_order": "2026-12-24", "espd_vip": True}
            },
            "meta": {"patch_properties": {"unset": ["espd_old"]}},
        }
    )
    for values in ({"churn": 0.1}, {"espd_x": float("nan")}, {"espd_x": "y" * 110_000}):
        with pytest.raises(ValueError):
            render(FieldUpdate(destination="klaviyo", customer_vendor_id="1", values=values))


def test_bookmarks_are_capped_at_sync_start_minus_margin_and_never_in_the_future() -> None:
    start = datetime.now(UTC)
    margin = timedelta(minutes=10)
    assert capped(start + timedelta(days=1), start, margin) == start - margin
    assert capped(start - timedelta(days=2), start, margin) == start - timedelta(days=2)
    assert capped(start, start + timedelta(days=1), margin) <= datetime.now(UTC) - margin


def test_import_errors_are_matched_by_pointer_or_payload_and_unplaceable_ones_fail_the_job() -> None:
    chunk = [
        (10 + i, {"type": "profile", "id": f"P{i}", "attributes": {"properties": {"espd_n": i}}})
        for i in range(3)
    ]
    by_pointer = {
        "code": "invalid",
        "detail": "x",
        "source": {"pointer": "/data/attributes/profiles/data/1/attributes"},
        "original_payload": {"properties": {"espd_n": 1}},
    }
    assert match_errors(chunk, [by_pointer], 1) == {10: None, 11: "invalid: x", 12: None}
    by_id = {
        "code": "not_found",
        "detail": "gone",
        "source": {},
        "original_payload": {"id": "P2", "attributes": {}},
    }
    assert match_errors(chunk, [by_id], 1)[12] == "not_found: gone"
    unknown = {
        "code": "invalid",
        "detail": "?",
        "source": {},
        "original_payload": {"properties": {"espd_n": 9}},
    }
    assert all(outcome is not None for outcome in match_errors(chunk, [unknown], 1).values())
    assert all(outcome is not None for outcome in match_errors(chunk, [], 1).values())


class Env:
    def __init__(self, limits: Limits | None = None) -> None:
        self.sim: Simulator = klaviyo.build(
            shops.generate(150, seed=3),
            limits=limits,
            keep_bodies=True,
            job_queued_seconds=0.05,
            job_processing_seconds=0.1,
        )
        self.server: SimulatorServer = self.sim.serve()

    def connector(self, key: str = "api_key", **options: Any) -> KlaviyoConnector:
        settings = ConnectorSettings(
            name="klaviyo",
            base_url=self.server.url,
            credentials={"api_key": SecretStr(self.sim.credentials.get(key, key))},
            streams=("profiles", "events"),
            options={"job_poll_seconds": 0.05, "job_poll_max_seconds": 0.2, "max_attempts": 2, **options},
        )
        return KlaviyoConnector(settings)


@pytest.fixture
def env() -> Iterator[Env]:
    environment = Env()
    yield environment
    environment.server.stop()


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_check_names_missing_write_scopes_and_rejects_a_bad_key(env: Env) -> None:
    async def check(key: str) -> Any:
        async with env.connector(key) as connector:
            return await connector.check()

    assert _run(check("api_key")).ok
    read_only = _run(check("read_only_api_key"))
    assert not read_only.ok and set(read_only.missing_permissions) == {"profiles:write", "lists:write"}
    bad = _run(check("pk_unknown"))
    assert not bad.ok and "api key" in bad.message.lower()
    assert env.sim.state.profile_count() == len(list(shops.generate(150, seed=3).people_on("klaviyo")))


def test_events_become_orders_and_engagement_from_the_right_metrics(env: Env) -> None:
    async def pull() -> tuple[list[Any], list[Any]]:
        async with env.connector() as connector:
            events = connector.streams()[1]
            pages = [p async for p in events.read(None, datetime.now(UTC))]
            again = [p async for p in events.read(pages[-1].checkpoint, datetime.now(UTC))]
            return pages, again

    pages, again = _run(pull())
    records = [r for p in pages for r in p.records]
    state = env.sim.state
    orders = [r for r in records if isinstance(r, Order)]
    shopify_orders = state.events_of(state.metric("Placed Order", "Shopify").id)
    assert len(orders) == len(shopify_orders) > 0  # the API-sent "Placed Order" is not counted
    assert all(o.lines and o.email and o.total >= 0 for o in orders)
    kinds = {r.kind for r in records if isinstance(r, EngagementEvent)}
    assert kinds == {"received", "opened", "clicked"}
    assert len({r.vendor_id for r in records}) == len(records)
    assert sum(len(p.records) for p in again) == 0  # nothing new: the incremental read is empty


def test_a_first_event_pull_in_time_windows_delivers_what_one_chain_does(env: Env) -> None:
    """Windows of one metric run side by side; until all are done a resumed run starts over."""

    async def pull(windows: int) -> list[Any]:
        async with env.connector(event_windows=windows) as connector:
            return [p async for p in connector.streams()[1].read(None, datetime.now(UTC))]

    one_chain, windowed = _run(pull(1)), _run(pull(4))
    ids = [r.vendor_id for p in windowed for r in p.records]
    assert len(ids) == len(set(ids)) and set(ids) == {r.vendor_id for p in one_chain for r in p.records}
    split_queries = [e.query for e in env.sim.log.entries() if "less-than" in e.query]
    assert len(split_queries) >= 3 * 4  # three windows closed above, for each of the four metrics
    mid_run = [p.checkpoint["metrics"] for p in windowed if p.records]
    assert all(state.get("after") is None for metrics in mid_run for state in metrics.values())
    assert all(state["watermark"] for state in windowed[-1].checkpoint["metrics"].values())


def test_bulk_push_reports_import_errors_per_profile_and_sends_no_list_or_consent(env: Env) -> None:
    ids = sorted(env.sim.state.profiles)[:120]
    gone, rejected = ids[7], ids[50]
    env.sim.state.delete_profile(gone)
    env.sim.faults.reject_records = {rejected}
    batch = [
        FieldUpdate(destination="klaviyo", customer_vendor_id=i, values={"espd_segment": "vip"}) for i in ids
    ]

    async def push() -> list[Any]:
        async with env.connector() as connector:
            return await connector.push_target().push(batch)

    results = _run(push())
    failed = {r.customer_vendor_id for r in results if not r.ok}
    assert failed == {gone, rejected}
    assert env.sim.state.find_profile(id=ids[0]).properties["espd_segment"] == "vip"
    writes = env.sim.log.writes()
    assert [w.path for w in writes] == ["/api/profile-bulk-import-jobs"]
    assert b"relationships" not in (writes[0].body or b"") and b"subscriptions" not in (writes[0].body or b"")


def test_running_jobs_are_polled_together_with_list_calls(env: Env) -> None:
    """Three jobs waited for at once cost list calls only, never one status read per job and round."""

    async def post_and_wait() -> list[dict[str, Any]]:
        async with env.connector() as connector:
            jobs = []
            for n in range(3):
                entry = {"type": "profile", "attributes": {"email": f"watched{n}@example.com"}}
                body = {
                    "data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [entry]}}}
                }
                response = await connector.client.request(
                    "POST", "/api/profile-bulk-import-jobs", limit_key="bulk_import_profiles", json=body
                )
                jobs.append(response.json()["data"])
            watcher = JobWatcher(connector.client, PollPolicy(initial=0.05, maximum=0.1))
            return await asyncio.gather(
                *(watcher.wait_for(job["id"], job["attributes"]["created_at"]) for job in jobs)
            )

    finished = _run(post_and_wait())
    assert [(job["status"], job["completed_count"]) for job in finished] == [("complete", 1)] * 3
    reads = [e.path for e in env.sim.log.entries() if e.method == "GET"]
    assert reads and set(reads) == {"/api/profile-bulk-import-jobs"}


def test_cancelled_job_leaves_every_record_not_ok(env: Env) -> None:
    env.sim.state.cancel_next_jobs = 1
    batch = [
        FieldUpdate(destination="klaviyo", customer_vendor_id=i, values={"espd_x": 1})
        for i in sorted(env.sim.state.profiles)[:100]
    ]

    async def push() -> list[Any]:
        async with env.connector() as connector:
            return await connector.push_target().push(batch)

    assert not any(r.ok for r in _run(push()))


def test_pull_at_tight_documented_limits_earns_no_429() -> None:
    environment = Env(Limits(scale=0.05))  # get_profiles: 3/s and 37/min
    try:

        async def pull() -> int:
            async with environment.connector(rate_scale=0.05, profile_windows=2) as connector:
                profiles = connector.streams()[0]
                return len([r async for p in profiles.read(None, datetime.now(UTC)) for r in p.records])

        assert _run(pull()) == environment.sim.state.profile_count()
        statuses = [e.status for e in environment.sim.log.entries()]
        assert 429 not in statuses and len(statuses) >= 3
    finally:
        environment.server.stop()
