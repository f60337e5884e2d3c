"""Mailchimp specifics the contract suite does not cover, against the strict simulator over loopback:
error classification, tags and value rendering, checked member paging and the run's upper bound, the
connection cap under chaos, email activity watermarks, order diffs, /batches pushes, field limits."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from connectors.base import ConnectorSettings, FieldSpec, FieldType, Page
from connectors.http import Outcome
from connectors.mailchimp import MailchimpConnector
from connectors.mailchimp.api import ThrottleLimiter, classify
from connectors.mailchimp.batches import BatchSettings
from connectors.mailchimp.fields import MergeFieldLimitError, assign_tags, render, tag_candidates
from connectors.records import EventKind, FieldUpdate, Order, Profile
from simulators import mailchimp, shops
from simulators.dataset import ShopData
from simulators.harness import Limits, Simulator, SimulatorServer
from simulators.mailchimp.batches import BatchOptions
from tests.connectors.adapters.mailchimp import ADAPTER

FIELDS = (
    FieldSpec("espd_churn_risk", FieldType.NUMBER),
    FieldSpec("espd_next_order", FieldType.DATE),
    FieldSpec("espd_segment", FieldType.TEXT),
)


@pytest.fixture(scope="module")
def shop() -> ShopData:
    return shops.generate(300, seed=5)


class Running:
    def __init__(self, shop: ShopData, **build: Any) -> None:
        self.sim: Simulator = mailchimp.build(shop, keep_bodies=True, **build)
        self.server: SimulatorServer = self.sim.serve()

    def connector(self, streams: tuple[str, ...] = ("members",), **options: Any) -> MailchimpConnector:
        settings = ConnectorSettings(
            name="mailchimp",
            base_url=self.server.url + self.sim.base_path,
            credentials={"api_key": SecretStr(options.pop("api_key", self.sim.credentials["api_key"]))},
            streams=streams,
            lookback=timedelta(minutes=10),
            timeout_seconds=10,
            options={"settle_seconds": 0, **options},
        )
        return MailchimpConnector(settings, dry_run=options.pop("dry_run", False))

    def requests(self, path_part: str) -> list[Any]:
        return [e for e in self.sim.log.entries() if path_part in e.path]


@pytest.fixture
def run(shop: ShopData) -> Iterator[Running]:
    running = Running(shop)
    yield running
    running.server.stop()


def pull(connector: MailchimpConnector, checkpoint: dict | None = None) -> list[Page]:
    async def go() -> list[Page]:
        async with connector:
            stream = connector.streams()[0]
            return [page async for page in stream.read(checkpoint, datetime.now(UTC))]

    return asyncio.run(go())


def records(pages: list[Page]) -> list[Any]:
    return [r for p in pages for r in p.records]


# --- classification ----------------------------------------------------------------------------


def _problem(status: int, title: str, detail: str = "", **extra: Any) -> httpx.Response:
    body = {"type": "t", "title": title, "status": status, "detail": detail, "instance": "i", **extra}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


@pytest.mark.parametrize(
    ("response", "outcome"),
    [
        (httpx.Response(200, json={}), Outcome.OK),
        (
            _problem(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections."),
            Outcome.RATE_LIMITED,
        ),
        (httpx.Response(403, content=b""), Outcome.RATE_LIMITED),
        (
            httpx.Response(403, content=b"<html>denied</html>", headers={"content-type": "text/html"}),
            Outcome.RATE_LIMITED,
        ),
        (_problem(403, "Forbidden", "You don't have permission"), Outcome.AUTH_FAILED),
        (_problem(403, "User Disabled"), Outcome.AUTH_FAILED),
        (_problem(401, "API Key Invalid"), Outcome.AUTH_FAILED),
        (_problem(401, "API Key Missing"), Outcome.AUTH_FAILED),
        (_problem(404, "Resource Not Found"), Outcome.RECORD_REJECTED),
        (
            _problem(400, "Invalid Resource", "bad", errors=[{"field": "X", "message": "m"}]),
            Outcome.RECORD_REJECTED,
        ),
        (_problem(405, "Method Not Allowed"), Outcome.RECORD_REJECTED),
        (_problem(414, "Resource Nesting Too Deep"), Outcome.RECORD_REJECTED),
        (_problem(422, "Invalid Method Override"), Outcome.RECORD_REJECTED),
        (_problem(426, "Requested Fields Invalid"), Outcome.RECORD_REJECTED),
        (_problem(500, "Internal Server Error"), Outcome.RETRY),
        (httpx.Response(502, content=b"bad gateway"), Outcome.RETRY),
        (_problem(503, "Service Unavailable"), Outcome.RETRY),
        (_problem(503, "Compliance Related"), Outcome.FATAL),
        (httpx.Response(504, content=b""), Outcome.RETRY),
        (
            httpx.Response(403, content=b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>"),
            Outcome.FATAL,
        ),
        (_problem(418, "Teapot"), Outcome.FATAL),
    ],
)
def test_every_documented_answer_is_classified(response: httpx.Response, outcome: Outcome) -> None:
    assert classify(response).outcome is outcome


def test_errors_name_the_fields_and_never_carry_an_email() -> None:
    verdict = classify(
        _problem(
            400,
            "Member Exists",
            "ann@example.com is already a list member.",
            errors=[{"field": "ESPD_SCORE", "message": "Please enter a number"}],
        )
    )
    assert "@" not in verdict.message
    assert "ESPD_SCORE: Please enter a number" in verdict.message


def test_retry_after_is_honoured_when_present_and_absent_otherwise() -> None:
    told = _problem(429, "Too Many Requests")
    told.headers["Retry-After"] = "3"
    assert classify(told).wait_seconds == 3.0
    assert classify(_problem(429, "Too Many Requests")).wait_seconds is None


# --- tags, rendering, windows --------------------------------------------------------------------


def test_tags_are_short_valid_deterministic_and_distinct() -> None:
    names = ["espd_churn_risk", "espd_churn_date", "espd_churn_rank", "espd_next_order", "espd_segment"]
    tags = assign_tags(names, taken={"FNAME", "LNAME", "ESPD_NEXTO"})
    assert tags == assign_tags(reversed(names), taken={"FNAME", "LNAME", "ESPD_NEXTO"})
    assert len(set(tags.values())) == len(names)
    assert all(len(t) <= 10 and t.startswith("ESPD") and t.replace("_", "").isalnum() for t in tags.values())
    assert all(t == t.upper() for t in tags.values())
    assert tags["espd_next_order"] != "ESPD_NEXTO"  # taken: the hashed fallback is used
    assert next(tag_candidates("espd_segment")) == "ESPD_SEGME"


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("2026-12-24", "date", "2026-12-24"),
        ("2026-12-24T23:10:00+00:00", "date", "2026-12-24"),
        ("2026-12-24T23:10:00Z", "date", "2026-12-24"),
        (0.25, "number", 0.25),
        (7, "number", 7),
        (True, "number", 1),
        ("3.5", "number", 3.5),
        (None, "number", ""),
        ("at_risk", "text", "at_risk"),
        (False, "text", "false"),
    ],
)
def test_values_are_rendered_the_way_mailchimp_stores_them(value: Any, kind: str, expected: Any) -> None:
    assert render(value, kind) == expected


@pytest.mark.parametrize(("value", "kind"), [("x" * 256, "text"), ("soon", "date"), ("many", "number")])
def test_unrenderable_values_are_refused(value: Any, kind: str) -> None:
    with pytest.raises(ValueError):
        render(value, kind)


def test_the_run_upper_bound_is_never_after_the_sync_start_nor_in_the_future(run: Running) -> None:
    connector = run.connector(settle_seconds=120)
    future = datetime.now(UTC) + timedelta(hours=1)
    assert connector.ctx.t_end(future) <= datetime.now(UTC) - timedelta(seconds=119)
    started = datetime(2026, 5, 1, 12, 0, 30, 500000, tzinfo=UTC)
    assert connector.ctx.t_end(started) == datetime(2026, 5, 1, 11, 58, 30, tzinfo=UTC)
    asyncio.run(connector.aclose())


def test_more_than_ten_connections_is_refused_in_config(run: Running) -> None:
    with pytest.raises(ValueError, match="max_connections"):
        run.connector(max_connections=11)


# --- members -----------------------------------------------------------------------------------


def _listing(run: Running) -> list[dict[str, list[str]]]:
    return [parse_qs(e.query) for e in run.requests("/members")]


def test_members_are_one_listing_of_the_closed_window_overlapping_by_a_row(run: Running) -> None:
    """settle 0: the window's last second is still open, so pages must meet on a shared row."""
    pages = pull(run.connector(page_size=30, max_connections=1))
    people = ADAPTER.people(run.sim)
    assert {r.vendor_id for r in records(pages)} == set(people.values())
    assert len(records(pages)) == len(people)  # the shared row is given once
    listing = _listing(run)
    assert [q["offset"] for q in listing] == [[str(29 * n)] for n in range(len(listing))]
    assert len(listing) == -(-(len(people) - 1) // 29)  # no planning round, no repairs
    assert len({(q["before_last_changed"][0], str(q.get("since_last_changed"))) for q in listing}) == 1
    for query in listing:
        assert query["count"] == ["30"]
        assert query["sort_field"] == ["last_changed"] and query["sort_dir"] == ["ASC"]
        assert "members.email_address" in query["fields"][0] and "members.tags" not in query["fields"][0]
    consent = {r.consent.value for r in records(pages) if isinstance(r, Profile)}
    assert "subscribed" in consent


def test_a_window_closed_before_the_run_is_read_in_full_pages_all_connections_at_once(
    shop: ShopData,
) -> None:
    running = Running(shop, latency_seconds=0.05)
    try:
        pages = pull(running.connector(page_size=30, max_connections=4, settle_seconds=1))
        people = ADAPTER.people(running.sim)
        assert {r.vendor_id for r in records(pages)} == set(people.values())
        entries = running.requests("/members")
        assert sorted(int(parse_qs(e.query)["offset"][0]) for e in entries) == list(range(0, len(people), 30))
        first_answer = min(e.finished for e in entries)
        assert sum(e.started < first_answer for e in entries) == 4  # a page per connection at once
    finally:
        running.server.stop()


@pytest.mark.parametrize("settle", [0, 1])
def test_members_leaving_their_place_while_paging_cost_a_re_read_not_a_loss(
    run: Running, settle: int
) -> None:
    """After each page a member already read is written: it leaves for the window's end (or past
    it), every later row shifts left, and naive offset paging would skip one row per page."""
    audience = run.sim.state.audience
    by_vendor_id = {f"{audience.list_id}:{m.id}": m for m in audience.members.values()}

    async def go() -> set[str]:
        connector = run.connector(page_size=30, max_connections=1, settle_seconds=settle)
        got: set[str] = set()
        async with connector:
            async for page in connector.streams()[0].read(None, datetime.now(UTC)):
                got |= {r.vendor_id for r in page.records}
                if page.records:
                    with audience.lock:
                        audience.touch(by_vendor_id[page.records[0].vendor_id])
        return got

    assert asyncio.run(go()) == set(ADAPTER.people(run.sim).values())
    offsets = [int(q["offset"][0]) for q in _listing(run)]
    assert offsets != sorted(offsets)  # a failed boundary was asked again further back


def test_a_second_holding_more_than_a_page_is_read_whole(run: Running) -> None:
    audience = run.sim.state.audience
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with audience.lock:
        for member in list(audience.members.values())[:45]:
            audience.touch(member, moment)
    for settle in (0, 1):
        pages = pull(run.connector(page_size=20, settle_seconds=settle))
        assert {r.vendor_id for r in records(pages)} == set(ADAPTER.people(run.sim).values())


def test_the_connection_cap_holds_and_throttling_is_survived(shop: ShopData) -> None:
    """The account allows 3 here while espd runs 8: 429s and bare 403s come back, nothing is lost."""
    running = Running(shop, limits=Limits(scale=0.3), latency_seconds=0.02, bare_403_every=2)
    try:
        connector = running.connector(page_size=10)
        pages = pull(connector)
        throttled = [e for e in running.sim.log.entries() if e.status in (403, 429)]
        assert throttled and {e.status for e in throttled} == {403, 429}
        assert {r.vendor_id for r in records(pages)} == set(ADAPTER.people(running.sim).values())
    finally:
        running.server.stop()


def test_the_client_never_has_more_than_its_connections_in_flight(shop: ShopData) -> None:
    running = Running(shop, latency_seconds=0.03)
    try:
        pull(running.connector(page_size=10, max_connections=4))
        assert 2 <= running.sim.log.max_in_flight <= 4
        assert not [e for e in running.sim.log.entries() if e.status == 429]
    finally:
        running.server.stop()


# --- email activity ----------------------------------------------------------------------------


def test_activity_gives_received_then_only_new_events_per_campaign(run: Running) -> None:
    reports = run.sim.state.reports
    recent = [c for c in reports.campaigns.values() if c.send_time > datetime.now(UTC) - timedelta(days=90)]
    assert recent, "the shop must have campaigns in the last 90 days"
    first = pull(run.connector(("email_activity",), page_size=50))
    events = records(first)
    received = [e for e in events if e.kind is EventKind.RECEIVED]
    live = set(run.sim.state.audience.members)
    assert len(received) == sum(len([m for m in c.recipients if m in live]) for c in recent)
    assert any(e.kind is EventKind.OPENED for e in events)
    assert len({e.vendor_id for e in events}) == len(events)
    campaign = recent[-1]
    member_id = campaign.recipients[0]
    reports.add_event(campaign.id, member_id, "clicked", datetime.now(UTC), "https://shop.example/new")
    again = records(pull(run.connector(("email_activity",), page_size=50), first[-1].checkpoint))
    assert [e.url for e in again if e.kind is EventKind.CLICKED] == ["https://shop.example/new"]
    assert not [e for e in again if e.kind is EventKind.RECEIVED]
    assert all("since=" in e.query for e in run.requests("/email-activity")[-len(recent) :])


# --- orders ------------------------------------------------------------------------------------


def test_orders_are_scanned_in_full_and_only_changed_ones_emitted(run: Running) -> None:
    store = run.sim.state.store
    first = pull(run.connector(("orders",), page_size=100))
    orders = [r for r in records(first) if isinstance(r, Order)]
    assert len({o.vendor_id for o in orders}) == len(store.orders)
    assert sum(len(o.lines) for o in orders) == sum(len(o["lines"]) for o in store.orders)
    assert [p.checkpoint["scan"] for p in first][-1] is None
    assert pull(run.connector(("orders",), page_size=100), first[-1].checkpoint)[0].records == []
    with store.lock:
        store.orders[7]["updated_at_foreign"] = datetime.now(UTC).replace(microsecond=0).isoformat()
    changed = records(pull(run.connector(("orders",), page_size=100), first[-1].checkpoint))
    assert [o.vendor_id for o in changed] == [f"{store.id}:{store.orders[7]['id']}"]


# --- push --------------------------------------------------------------------------------------


def _updates(run: Running, n: int) -> list[FieldUpdate]:
    people = sorted(ADAPTER.people(run.sim).items())[:n]
    return [
        FieldUpdate(
            destination="mailchimp",
            customer_vendor_id=vendor_id,
            email=email,
            values={
                "espd_churn_risk": i / 100,
                "espd_next_order": "2026-12-24T08:00:00Z",
                "espd_segment": "vip",
            },
        )
        for i, (email, vendor_id) in enumerate(people)
    ]


def _push(connector: MailchimpConnector, updates: list[FieldUpdate]) -> list[tuple[bool, str | None]]:
    async def go() -> list[tuple[bool, str | None]]:
        async with connector:
            target = connector.push_target()
            await target.ensure_fields(FIELDS)
            return [(r.ok, r.error) for r in await target.push(updates)]

    return asyncio.run(go())


def test_large_pushes_go_through_batches_and_map_every_result_back(shop: ShopData) -> None:
    running = Running(shop, batch_options=BatchOptions(phase_seconds=0.05, op_seconds=0.001))
    try:
        updates = _updates(running, 30)
        audience = running.sim.state.audience
        rejected, gone = updates[3], updates[11]
        running.sim.faults.reject_records = {rejected.email or ""}
        with audience.lock:
            audience.forget(audience.members[gone.customer_vendor_id.partition(":")[2]])
        connector = running.connector(batch_threshold=0)
        connector._target.batches.settings = BatchSettings(first_poll_seconds=0.05)
        results = _push(connector, updates)
        assert [ok for ok, _e in results] == [i not in (3, 11) for i in range(30)]
        assert "member gone" in (results[11][1] or "")
        assert "Injected" in (results[3][1] or "") and "@" not in (results[3][1] or "")
        assert (
            ADAPTER.stored_values(running.sim, updates[0].customer_vendor_id)["espd_next_order"]
            == "2026-12-24"
        )
        posts = [e for e in running.sim.log.entries() if e.path.endswith("/batches") and e.method == "POST"]
        assert len(posts) == 1 and not running.requests("/members/")  # no direct member write
        for op in json.loads(posts[0].body or b"{}")["operations"]:
            assert op["method"] == "PATCH" and set(json.loads(op["body"])) == {"merge_fields"}
        assert ADAPTER.consent_changes(running.sim.log.entries()) == []
    finally:
        running.server.stop()


def test_a_patch_to_a_member_that_is_gone_is_reported_not_ok(run: Running) -> None:
    updates = _updates(run, 3)
    audience = run.sim.state.audience
    with audience.lock:
        audience.forget(audience.members[updates[1].customer_vendor_id.partition(":")[2]])
    results = _push(run.connector(), updates)
    assert [ok for ok, _e in results] == [True, False, True]
    assert not [e for e in run.sim.log.entries() if e.method in ("PUT", "POST") and "/members" in e.path]
    for entry in run.requests("/members/"):
        assert entry.method == "PATCH" and set(json.loads(entry.body or b"{}")) == {"merge_fields"}
        assert parse_qs(entry.query) == {"skip_merge_validation": ["true"]}


def test_the_field_limit_is_checked_before_anything_is_created(run: Running) -> None:
    audience = run.sim.state.audience
    while len(audience.merge_fields) < 28:
        audience.add_merge_field({"name": f"user field {len(audience.merge_fields)}", "type": "text"})

    async def go() -> None:
        connector = run.connector()
        async with connector:
            await connector.push_target().ensure_fields(FIELDS)

    with pytest.raises(MergeFieldLimitError, match=r"3 new merge field.*only 2 of 30 are free"):
        asyncio.run(go())
    assert not [e for e in run.sim.log.entries() if e.method == "POST"]


def test_a_users_field_of_another_type_is_kept_not_retyped(run: Running) -> None:
    run.sim.state.audience.add_merge_field({"tag": "ESPD_SEG", "name": "espd_segment", "type": "dropdown"})

    async def go() -> tuple[tuple[str, ...], dict[str, str]]:
        connector = run.connector()
        async with connector:
            target = connector.push_target()
            report = await target.ensure_fields(FIELDS)
            return report.created, await target.list_fields()

    created, fields = asyncio.run(go())
    assert created == ("espd_churn_risk", "espd_next_order")
    assert fields == {"espd_segment": "dropdown", "espd_churn_risk": "number", "espd_next_order": "date"}
    assert not [e for e in run.sim.log.entries() if e.method == "PATCH"]


def test_check_proves_the_key_and_names_what_fails(run: Running) -> None:
    async def check(connector: MailchimpConnector) -> Any:
        async with connector:
            return await connector.check()

    good = asyncio.run(check(run.connector(("members", "email_activity", "orders"))))
    assert good.ok, good.message
    bad_key = "0" * 32 + "-us21"
    bad = asyncio.run(check(run.connector(api_key=bad_key)))
    assert not bad.ok and bad.missing_permissions == ("api_key",) and "auth" in bad.message.lower()
    missing = asyncio.run(check(run.connector(list_id="nolist1234")))
    assert not missing.ok and "audience" in missing.message


def test_a_batch_refused_as_a_whole_is_bisected_until_the_good_operations_land(shop: ShopData) -> None:
    running = Running(shop, batch_options=BatchOptions(phase_seconds=0.05, op_seconds=0.001))
    try:
        faults = running.sim.faults
        faults.error_status, faults.error_burst, faults.error_path_prefix = 400, 2, "/3.0/batches"
        connector = running.connector(batch_threshold=0)
        connector._target.batches.settings = BatchSettings(first_poll_seconds=0.05)
        updates = _updates(running, 4)
        assert [ok for ok, _e in _push(connector, updates)] == [True] * 4
        posts = [e for e in running.sim.log.entries() if e.path.endswith("/batches") and e.method == "POST"]
        assert sorted(e.status for e in posts) == [200, 200, 200, 400, 400]
        accepted = [e for e in posts if e.status == 200]
        # 4 refused, then 2 + 2 of which one refused, then that one's 1 + 1
        assert sorted(len(json.loads(e.body or b"{}")["operations"]) for e in accepted) == [1, 1, 2]
        for update in updates:
            assert ADAPTER.stored_values(running.sim, update.customer_vendor_id)["espd_segment"] == "vip"
    finally:
        running.server.stop()


def test_activity_resumes_mid_campaign_from_its_checkpoint_with_nothing_lost(run: Running) -> None:
    full = {e.vendor_id for e in records(pull(run.connector(("email_activity",), page_size=20)))}

    async def first_two_pages() -> list[Page]:
        connector = run.connector(("email_activity",), page_size=20)
        async with connector:
            pages = connector.streams()[0].read(None, datetime.now(UTC))
            taken = [await anext(pages), await anext(pages)]
            await pages.aclose()
            return taken

    head = asyncio.run(first_two_pages())
    assert head[-1].checkpoint["current"]["offset"] > 0, "the first campaign must span pages"
    rest = records(pull(run.connector(("email_activity",), page_size=20), head[-1].checkpoint))
    assert {e.vendor_id for e in records(head)} | {e.vendor_id for e in rest} == full


def test_a_record_of_an_unknown_audience_fails_alone(run: Running) -> None:
    updates = _updates(run, 2)
    stray = FieldUpdate(
        destination="mailchimp", customer_vendor_id="nolist1234:abc", values={"espd_segment": "x"}
    )
    results = _push(run.connector(), [updates[0], stray, updates[1]])
    assert [ok for ok, _e in results] == [True, False, True]
    assert "Resource Not Found" in (results[1][1] or "")


def test_throttling_pauses_everyone_doubling_per_episode_or_as_long_as_told() -> None:
    limiter = ThrottleLimiter(8)
    throttle = _problem(429, "Too Many Requests")

    def paused() -> float:
        return limiter._resume_at - time.monotonic()

    limiter.observe(throttle)
    assert 0.9 < paused() <= 1.0
    limiter.observe(throttle)  # in flight when the pause began: the same episode
    assert paused() <= 1.0
    limiter._resume_at = 0.0  # the pause is over; the next throttle is a new episode
    limiter.observe(throttle)
    assert 1.9 < paused() <= 2.0
    limiter.observe(httpx.Response(200, json={}))
    limiter._resume_at = 0.0
    limiter.observe(httpx.Response(403, content=b""))  # a bare 403 counts; a success reset the streak
    assert 0.9 < paused() <= 1.0
    limiter._resume_at = 0.0
    told = _problem(429, "Too Many Requests")
    told.headers["Retry-After"] = "3"
    limiter.observe(told)
    assert 2.9 < paused() <= 3.0
    assert limiter.throttled == 5
