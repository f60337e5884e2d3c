"""Brevo connector specifics the contract suite does not cover: error classification, value
rendering, the incremental recipe's cursor, checkpoints and offsets, orders, and a type round trip
through the strict simulator (Brevo drops a wrongly typed value silently, so only a read-back proves
a value landed)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr

from connectors.base import ConnectorSettings, FieldSpec, FieldType, Page
from connectors.brevo import BrevoConnector
from connectors.brevo.api import CONTACT_GONE, classify, parse_time, wire_time
from connectors.brevo.push import attribute_name, render
from connectors.http import AuthFailed, Outcome
from connectors.records import Consent, FieldUpdate, Order, Profile
from simulators import brevo as brevo_simulator
from simulators.harness import Limits
from tests.simulators.test_brevo_shop import Brevo, FakeClock, make_shop, running

ALL_TYPES = (
    FieldSpec("espd_churn_risk", FieldType.NUMBER),
    FieldSpec("espd_orders", FieldType.INTEGER),
    FieldSpec("espd_next_order", FieldType.DATE),
    FieldSpec("espd_segment", FieldType.CATEGORY),
    FieldSpec("espd_note", FieldType.TEXT),
    FieldSpec("espd_vip", FieldType.BOOLEAN),
)


def _response(status: int, method: str = "GET", path: str = "/v3/contacts", **kwargs: Any) -> httpx.Response:
    request = httpx.Request(method, "https://api.brevo.com" + path)
    return httpx.Response(status, request=request, **kwargs)


@pytest.mark.parametrize(
    ("status", "method", "path", "outcome"),
    [
        (200, "GET", "/v3/contacts", Outcome.OK),
        (204, "PUT", "/v3/contacts/5", Outcome.OK),
        (401, "GET", "/v3/contacts", Outcome.AUTH_FAILED),
        (500, "GET", "/v3/contacts", Outcome.RETRY),
        (502, "PUT", "/v3/contacts/5", Outcome.RETRY),
        (503, "GET", "/v3/orders", Outcome.RETRY),
        (504, "GET", "/v3/contacts", Outcome.RETRY),
        (404, "PUT", "/v3/contacts/5", Outcome.RECORD_REJECTED),
        (404, "GET", "/v3/contacts/5/campaignStats", Outcome.RECORD_REJECTED),
        (404, "GET", "/v3/orders", Outcome.FATAL),
        (404, "POST", "/v3/contacts/batch", Outcome.FATAL),
        (400, "PUT", "/v3/contacts/5", Outcome.RECORD_REJECTED),
        (402, "PUT", "/v3/contacts/5", Outcome.RECORD_REJECTED),
        (403, "PUT", "/v3/contacts/5", Outcome.RECORD_REJECTED),
        (405, "DELETE", "/v3/contacts/5", Outcome.RECORD_REJECTED),
        (409, "POST", "/v3/contacts/attributes/normal/X", Outcome.RECORD_REJECTED),
        (422, "PUT", "/v3/contacts/5", Outcome.RECORD_REJECTED),
        (400, "GET", "/v3/contacts", Outcome.FATAL),  # a bad query is espd's bug, not a record's
        (418, "GET", "/v3/contacts", Outcome.FATAL),
    ],
)
def test_every_documented_status_is_classified(status: int, method: str, path: str, outcome: Outcome) -> None:
    body = {"code": "invalid_parameter", "message": "x"} if status >= 400 else {}
    assert classify(_response(status, method, path, json=body)).outcome is outcome


def test_404_on_a_contact_says_it_is_gone() -> None:
    verdict = classify(
        _response(404, "PUT", "/v3/contacts/5", json={"code": "document_not_found", "message": "m"})
    )
    assert verdict.message == CONTACT_GONE


def test_429_waits_the_reset_header_else_backs_off() -> None:
    told = classify(
        _response(
            429, json={"code": "not_acceptable", "message": "m"}, headers={"x-sib-ratelimit-reset": "7"}
        )
    )
    assert (told.outcome, told.wait_seconds) == (Outcome.RATE_LIMITED, 7.0)
    zero = classify(_response(429, headers={"x-sib-ratelimit-reset": "0"}))
    assert zero.wait_seconds == 1.0
    bare = classify(_response(429, headers={"Retry-After": "30"}))  # not Brevo's header: ignored
    assert (bare.outcome, bare.wait_seconds) == (Outcome.RATE_LIMITED, None)


def test_425_retries_after_a_few_seconds() -> None:
    verdict = classify(
        _response(425, "PUT", "/v3/contacts/5", json={"code": "account_in_process", "message": "m"})
    )
    assert verdict.outcome is Outcome.RETRY and 2 <= (verdict.wait_seconds or 0) <= 5


def test_classification_uses_the_code_and_never_leaks_an_email() -> None:
    body = {"code": "duplicate_parameter", "message": "Contact ann@example.com already exists"}
    verdict = classify(_response(400, "PUT", "/v3/contacts/5", json=body))
    assert "duplicate_parameter" in verdict.message and "ann@example.com" not in verdict.message
    assert "without an errorModel" in classify(_response(502, content=b"<html>")).message


def test_values_are_rendered_strictly_by_attribute_type() -> None:
    assert render("float", 3) == 3.0 and isinstance(render("float", 3), float)
    assert render("float", 0.25) == 0.25
    for bad in (True, "0.5", float("nan"), float("inf")):
        with pytest.raises(ValueError, match="float"):
            render("float", bad)
    assert render("date", "2026-12-24") == "2026-12-24"
    assert render("date", "2026-12-24T23:30:00-05:00") == "2026-12-25"  # taken in UTC
    assert render("date", "2026-12-24T08:00:00") == "2026-12-24"
    for bad in ("24/12/2026", 20261224):
        with pytest.raises(ValueError, match="date"):
            render("date", bad)
    assert render("boolean", False) is False
    with pytest.raises(ValueError, match="boolean"):
        render("boolean", "true")
    assert (render("text", "at_risk"), render("text", 2.5), render("text", True)) == (
        "at_risk",
        "2.5",
        "true",
    )
    assert (render("text", None), render("float", None)) == ("", None)
    with pytest.raises(ValueError, match="id"):
        render("id", 5)


def test_attribute_names_are_upper_cased_and_must_be_espd_owned() -> None:
    assert attribute_name("espd_churn_risk") == "ESPD_CHURN_RISK"
    for bad in ("churn_risk", "espd_churn-risk", "espd_é"):
        with pytest.raises(ValueError, match="espd_"):
            attribute_name(bad)


def test_wire_time_has_milliseconds_and_z_and_offsets_parse_to_utc() -> None:
    moment = datetime(2024, 5, 2, 10, 0, 0, 123456, tzinfo=UTC)
    assert wire_time(moment) == "2024-05-02T10:00:00.123Z"
    assert parse_time("2024-05-02T10:00:00.123+02:00") == datetime(2024, 5, 2, 8, 0, 0, 123000, tzinfo=UTC)
    with pytest.raises(ValueError, match="zone"):
        parse_time("2024-05-02T10:00:00")


# -- against the simulator ------------------------------------------------------------------------


@pytest.fixture
def brevo() -> Iterator[Brevo]:
    yield from running(make_shop(), keep_bodies=True)


def _connector(
    brevo: Brevo, dry_run: bool = False, api_key: str | None = None, **options: Any
) -> BrevoConnector:
    settings = ConnectorSettings(
        name="brevo",
        base_url=brevo.server.url + brevo.sim.base_path,
        credentials={"api_key": SecretStr(api_key or brevo.sim.credentials["api_key"])},
        streams=tuple(options.pop("streams", ("contacts",))),
        timeout_seconds=10,
        options=options,
    )
    return BrevoConnector(settings, dry_run=dry_run)


def _read(
    connector: BrevoConnector, checkpoint: dict[str, Any] | None, started: datetime, n: int | None = None
) -> list[Page]:
    async def run() -> list[Page]:
        async with connector:
            pages = []
            stream = connector.streams()[0]
            async for page in stream.read(checkpoint, started):
                pages.append(page)
                if n is not None and len(pages) == n:
                    break
            return pages

    return asyncio.run(run())


def _queries(brevo: Brevo, path: str = "/v3/contacts") -> list[dict[str, list[str]]]:
    return [parse_qs(e.query) for e in brevo.sim.log.entries() if e.path == path and e.method == "GET"]


def test_contacts_map_consent_times_and_attributes(brevo: Brevo) -> None:
    pages = _read(_connector(brevo, marketing_list_ids=[2]), None, datetime.now(UTC))
    profiles = {p.vendor_id: p for page in pages for p in page.records}
    assert isinstance(profiles["1"], Profile) and len(profiles) == 6
    assert profiles["2"].consent is Consent.UNSUBSCRIBED  # emailBlacklisted
    assert profiles["3"].consent is Consent.NEVER_SUBSCRIBED  # only on the customers list
    assert profiles["1"].consent is Consent.SUBSCRIBED
    contact = brevo.state.contacts.by_id[1]
    assert profiles["1"].updated_at == contact.modified_at  # served as +02:00, stored as UTC
    assert profiles["1"].email == "person1@shop.example"
    assert profiles["1"].properties == {"FIRSTNAME": "First1", "LASTNAME": "Last1"}
    any_list = {
        p.vendor_id: p for page in _read(_connector(brevo), None, datetime.now(UTC)) for p in page.records
    }
    assert any_list["3"].consent is Consent.SUBSCRIBED  # without configured lists, any list counts


def test_cursor_is_the_capped_run_start_and_the_next_query_looks_back(brevo: Brevo) -> None:
    started = datetime.now(UTC) - timedelta(hours=1)
    pages = _read(_connector(brevo), None, started)
    watermark = parse_time(pages[-1].checkpoint["watermark"])
    assert watermark == started - timedelta(minutes=2) - timedelta(microseconds=started.microsecond % 1000)
    future = datetime.now(UTC) + timedelta(days=1)
    capped = parse_time(_read(_connector(brevo), None, future)[-1].checkpoint["watermark"])
    assert capped <= datetime.now(UTC) - timedelta(minutes=2)
    _read(_connector(brevo), pages[-1].checkpoint, datetime.now(UTC))
    last = _queries(brevo)[-1]
    assert last["modifiedSince"] == [wire_time(watermark - timedelta(minutes=10))]
    assert last["modifiedSince"][0].endswith("Z") and "." in last["modifiedSince"][0]
    assert (last["sort"], last["limit"], last["offset"]) == (["asc"], ["1000"], ["0"])


def test_pages_meet_on_one_row_which_is_given_once(brevo: Brevo) -> None:
    pages = _read(_connector(brevo, page_size=3, parallel=1), None, datetime.now(UTC))
    assert [q["offset"] for q in _queries(brevo)] == [["0"], ["2"], ["4"]]
    ids = [r.vendor_id for page in pages for r in page.records]
    assert sorted(ids, key=int) == [str(i) for i in range(1, 7)] and len(ids) == 6
    assert [set(p.checkpoint) for p in pages] == [{"run"}, {"run"}, {"watermark"}]


def test_a_deletion_while_paging_is_re_read_further_back_not_lost(brevo: Brevo) -> None:
    """One shared row per page: a deletion before a page shifts it off that row, so it is asked
    again further back; without the check contact 4 would be skipped."""

    async def run() -> set[str]:
        connector = _connector(brevo, page_size=3, parallel=1)
        async with connector:
            seen: set[str] = set()
            async for page in connector.streams()[0].read(None, datetime.now(UTC)):
                seen |= {r.vendor_id for r in page.records}
                if len(seen) == 3:
                    brevo.state.delete_contact(1)  # every later row shifts left by one
            return seen

    assert asyncio.run(run()) == {str(i) for i in range(2, 7)} | {"1"}
    assert [q["offset"][0] for q in _queries(brevo)][:3] == ["0", "2", "0"]


def test_a_new_process_resumes_from_an_intermediate_checkpoint(brevo: Brevo) -> None:
    started = datetime.now(UTC)
    first = _read(
        _connector(brevo, page_size=3, parallel=1),
        {"watermark": wire_time(started - timedelta(days=3650))},
        started,
        n=1,
    )
    run = first[0].checkpoint["run"]
    assert run["offset"] == 2 and run["since"] is not None and run["last"]["id"] == 3
    rest = _read(
        _connector(brevo, page_size=3, parallel=1), first[0].checkpoint, started + timedelta(hours=1)
    )
    resumed = _queries(brevo)[1]
    assert resumed["offset"] == ["2"] and resumed["modifiedSince"] == [run["since"]]
    assert rest[-1].checkpoint == {"watermark": run["t_start"]}  # the interrupted run's T_start
    ids = {r.vendor_id for page in first + rest for r in page.records}
    assert ids == {str(i) for i in range(1, 7)}


def test_a_resumed_run_checks_its_first_page_against_the_checkpointed_row(brevo: Brevo) -> None:
    started = datetime.now(UTC)
    first = _read(_connector(brevo, page_size=3, parallel=1), None, started, n=1)
    brevo.state.delete_contact(2)  # between the two processes: the next page shifts left
    rest = _read(_connector(brevo, page_size=3, parallel=1), first[0].checkpoint, started)
    ids = {r.vendor_id for page in first + rest for r in page.records}
    assert ids == {str(i) for i in range(1, 7)}
    assert [q["offset"][0] for q in _queries(brevo)][1:3] == ["2", "0"]


def test_parallel_pages_are_yielded_in_order_with_true_checkpoints(brevo: Brevo) -> None:
    pages = _read(_connector(brevo, page_size=2, parallel=4), None, datetime.now(UTC))
    assert [[r.vendor_id for r in p.records] for p in pages] == [["1", "2"], ["3"], ["4"], ["5"], ["6"]]
    assert [p.checkpoint.get("run", {}).get("offset") for p in pages] == [1, 2, 3, 4, None]
    assert max(int(q["offset"][0]) for q in _queries(brevo)) < 6  # never asked past the count


def test_orders_map_lines_customer_and_cancellation(brevo: Brevo) -> None:
    pages = _read(_connector(brevo, streams=["orders"], currency="usd"), None, datetime.now(UTC))
    orders = {o.vendor_id: o for page in pages for o in page.records}
    assert list(orders) == ["O1", "O3", "O2"]
    first = orders["O1"]
    assert isinstance(first, Order)
    assert (first.customer_vendor_id, first.email, first.currency) == ("1", "person1@shop.example", "USD")
    assert (first.total, first.discount_code, first.cancelled_at) == (25.0, "SAVE10", None)
    assert [(line.product_id, line.quantity, line.unit_price) for line in first.lines] == [("P1", 2, 12.5)]
    assert orders["O2"].cancelled_at == orders["O2"].updated_at
    assert _queries(brevo, "/v3/orders")[0]["limit"] == ["100"]


@pytest.mark.timeout(120)  # at the documented 100 requests per hour, request 101 would wait an hour
def test_orders_past_the_hourly_budget_need_client_limits_off(brevo: Brevo) -> None:
    first = brevo.state.orders[0]
    brevo.state.orders = [
        dataclasses.replace(first, order=dataclasses.replace(first.order, order_id=f"X{i}"))
        for i in range(101 * 99 + 1)  # 101 pages of 100 meeting on one order
    ]
    connector = _connector(brevo, streams=["orders"], client_limits=False)
    pages = _read(connector, None, datetime.now(UTC))
    assert len({o.vendor_id for page in pages for o in page.records}) == 101 * 99 + 1
    assert len(_queries(brevo, "/v3/orders")) > 100


def _push(
    brevo: Brevo, specs: Sequence[FieldSpec], updates: list[FieldUpdate], **kwargs: Any
) -> tuple[Any, list[Any]]:
    async def run() -> tuple[Any, list[Any]]:
        connector = _connector(brevo, **kwargs)
        async with connector:
            target = connector.push_target()
            report = await target.ensure_fields(specs)
            return report, await target.push(updates)

    return asyncio.run(run())


def _update(vendor_id: str, **values: Any) -> FieldUpdate:
    return FieldUpdate(destination="brevo", customer_vendor_id=vendor_id, values=values)


def test_every_type_lands_when_read_back_through_the_api(brevo: Brevo) -> None:
    values = {
        "espd_churn_risk": 0.42,
        "espd_orders": 3,
        "espd_next_order": "2026-12-24T10:00:00+02:00",
        "espd_segment": "at_risk",
        "espd_note": "likes coffee",
        "espd_vip": True,
    }
    report, results = _push(brevo, ALL_TYPES, [_update("1", **values)])
    assert len(report.created) == 6 and all(r.ok for r in results)
    types = {
        a["name"]: (a["category"], a["type"]) for a in brevo.get("/contacts/attributes").json()["attributes"]
    }
    assert types["ESPD_ORDERS"] == ("normal", "float") and types["ESPD_VIP"] == ("normal", "boolean")
    assert types["ESPD_NEXT_ORDER"] == ("normal", "date") and types["ESPD_SEGMENT"] == ("normal", "text")
    stored = brevo.get("/contacts/1", identifierType="contact_id").json()["attributes"]
    assert stored["ESPD_CHURN_RISK"] == 0.42 and stored["ESPD_ORDERS"] == 3
    assert stored["ESPD_NEXT_ORDER"].startswith("2026-12-24") and stored["ESPD_VIP"] is True
    assert (stored["ESPD_SEGMENT"], stored["ESPD_NOTE"]) == ("at_risk", "likes coffee")
    puts = [e for e in brevo.sim.log.entries() if e.method == "PUT"]
    assert [(e.path, e.query) for e in puts] == [("/v3/contacts/1", "identifierType=contact_id")]
    assert set(json.loads(puts[0].body or b"{}")) == {"attributes"}


def test_a_users_attribute_is_never_retyped_and_values_follow_its_type(brevo: Brevo) -> None:
    assert (
        brevo.send("POST", "/contacts/attributes/normal/ESPD_SEGMENT", {"type": "float"}).status_code == 201
    )
    report, results = _push(
        brevo, ALL_TYPES[:4], [_update("1", espd_segment="at_risk"), _update("2", espd_segment=2)]
    )
    assert "ESPD_SEGMENT" in report.existing and "ESPD_SEGMENT" not in report.created
    assert not results[0].ok and "ESPD_SEGMENT" in (results[0].error or "")
    assert results[1].ok and brevo.state.contacts.by_id[2].attributes["ESPD_SEGMENT"] == 2.0
    types = {a["name"]: a["type"] for a in brevo.get("/contacts/attributes").json()["attributes"]}
    assert types["ESPD_SEGMENT"] == "float"
    assert not [
        e for e in brevo.sim.log.entries() if e.method in ("PUT", "DELETE") and "attributes/" in e.path
    ]


def test_gone_contacts_and_bad_ids_fail_only_their_record(brevo: Brevo) -> None:
    brevo.state.delete_contact(3)
    updates = [
        _update("1", espd_churn_risk=0.1),
        _update("3", espd_churn_risk=0.2),
        _update("x@y", espd_churn_risk=0.3),
    ]
    _, results = _push(brevo, ALL_TYPES[:1], updates)
    assert [r.ok for r in results] == [True, False, False]
    assert results[1].error == CONTACT_GONE and "numeric" in (results[2].error or "")


def test_undefined_attribute_fails_the_record_before_sending(brevo: Brevo) -> None:
    _, results = _push(brevo, (), [_update("1", espd_unknown=1.0)])
    assert not results[0].ok and "ensure_fields" in (results[0].error or "")
    assert not [e for e in brevo.sim.log.entries() if e.method == "PUT"]


def test_dry_run_reports_planned_fields_and_renders_but_sends_nothing(brevo: Brevo) -> None:
    report, results = _push(
        brevo, ALL_TYPES, [_update("1", espd_vip="yes"), _update("2", espd_vip=False)], dry_run=True
    )
    assert len(report.created) == 6
    assert [r.ok for r in results] == [False, True]  # rendering is checked even in a dry run
    assert [e for e in brevo.sim.log.entries() if e.method != "GET"] == []


def test_check_names_the_bad_key_and_push_stops_on_auth_failure(brevo: Brevo) -> None:
    async def run() -> tuple[Any, Any]:
        good = _connector(brevo, streams=["contacts", "orders"])
        bad = _connector(brevo, api_key="xkeysib-wrong")
        async with good, bad:
            ok, failed = await good.check(), await bad.check()
            with pytest.raises(AuthFailed):
                await bad.push_target().push([_update("1", espd_churn_risk=0.5)])
            return ok, failed

    ok, failed = asyncio.run(run())
    assert ok.ok and "orders" in ok.message
    assert not failed.ok and failed.missing_permissions == ("api_key",) and "auth" in failed.message


def test_concurrent_puts_stay_within_the_documented_contacts_rate() -> None:
    sim = brevo_simulator.build(make_shop(), limits=Limits())  # General plan: 10 RPS, real clock
    server = sim.serve()
    try:
        brevo = Brevo(sim, server, httpx.Client(), FakeClock())  # only its server and log are used
        brevo.client.close()
        updates = [_update(str(1 + i % 6), espd_churn_risk=i / 100) for i in range(24)]
        _, results = _push(brevo, ALL_TYPES[:1], updates, push_concurrency=16)
        assert all(r.ok for r in results)
        arrivals = sorted(e.started for e in sim.log.entries())
        assert [e.status for e in sim.log.entries() if e.status == 429] == []
        busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
        assert busiest <= 10
        assert len(arrivals) == 26  # attributes list + create + one PUT per update
    finally:
        server.stop()


def test_campaign_stats_reads_a_bounded_number_of_contacts_as_events(brevo: Brevo) -> None:
    now = datetime.now(UTC)
    brevo.state.add_email_event(1, 1, "received", now - timedelta(days=2))
    brevo.state.add_email_event(1, 1, "opened", now - timedelta(days=1))
    brevo.state.add_email_event(1, 1, "clicked", now - timedelta(hours=20), "https://shop.example/p/9")
    brevo.state.add_email_event(1, 1, "unsubscribed", now - timedelta(hours=19))
    pages = _read(_connector(brevo, streams=["campaign_stats"], campaign_stats_contacts=6), None, now)
    events = [e for page in pages for e in page.records]
    kinds = sorted(e.kind.value for e in events if e.customer_vendor_id == "1")
    assert kinds == ["clicked", "opened", "received", "unsubscribed"]
    clicked = next(e for e in events if e.kind.value == "clicked")
    assert clicked.url == "https://shop.example/p/9" and clicked.campaign_id == "1"
    stats_calls = [e for e in brevo.sim.log.entries() if e.path.endswith("/campaignStats")]
    assert len(stats_calls) == 6 and all("startDate" in e.query for e in stats_calls)
    assert set(pages[-1].checkpoint) == {"watermark"}

    resumed = {"run": {"t_start": wire_time(now), "pending": ["1"]}}
    again = _read(_connector(brevo, streams=["campaign_stats"]), resumed, now)
    assert len(again[0].records) == 4 and len(_queries(brevo)) == 1  # no new listing when resuming
