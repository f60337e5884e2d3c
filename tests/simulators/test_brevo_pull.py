"""Brevo simulator, read side: auth, contact pages (offset, creation order, filters, caps), one
contact, campaignStats, campaigns, orders, list contacts, paging faults. Every 2xx/4xx answer of a
documented operation is checked against Brevo's OpenAPI file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from simulators.harness import Faults
from tests.simulators.test_brevo_shop import BREVO_PEOPLE, T0, Brevo, brevo, make_shop, running
from tests.support.spec_conformance import assert_conforms

__all__ = ["brevo"]  # the fixture, re-exported for pytest

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+02:00$")


def _ids(response: httpx.Response) -> list[int]:
    return [c["id"] for c in response.json()["contacts"]]


def test_missing_or_unknown_api_key_is_401_key_not_found(brevo: Brevo) -> None:
    for headers in ({}, {"api-key": "xkeysib-wrong"}):
        response = httpx.get(brevo.server.url + "/v3/contacts", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"code": "unauthorized", "message": "Key not found"}


def test_default_sort_is_creation_desc_and_offset_pages(brevo: Brevo) -> None:
    assert _ids(brevo.get("/contacts")) == list(range(BREVO_PEOPLE, 0, -1))
    assert _ids(brevo.get("/contacts", sort="asc", limit=2, offset=2)) == [3, 4]
    assert _ids(brevo.get("/contacts", sort="desc", limit=4, offset=4)) == [2, 1]
    assert _ids(brevo.get("/contacts", sort="asc", limit=2, offset=6)) == []


def test_limit_caps_defaults_and_negative_values(brevo: Brevo) -> None:
    caps = {
        "/contacts": 1000,
        "/contacts/lists/2/contacts": 500,
        "/emailCampaigns": 100,
        "/orders": 100,
        "/processes": 50,
    }
    for path, cap in caps.items():
        assert brevo.get(path, limit=cap).status_code == 200
        over = brevo.get(path, limit=cap + 1)
        assert over.status_code == 400
        assert over.json() == {"code": "out_of_range", "message": "Limit exceeds max value"}
        assert brevo.get(path, limit=-1).status_code == 400
        assert brevo.get(path, offset=-1).status_code == 400


def test_default_page_size_is_fifty() -> None:
    shop = make_shop()
    base = shop.people[0]
    shop.people.extend(
        base.__class__(
            **{
                **{f: getattr(base, f) for f in base.__slots__},
                "person_id": 100 + i,
                "email": f"bulk{i}@shop.example",
            }
        )
        for i in range(60)
    )
    for big in running(shop):
        response = big.get("/contacts")
        assert len(response.json()["contacts"]) == 50
        assert response.json()["count"] == BREVO_PEOPLE + 60


def test_timestamps_carry_milliseconds_and_the_configured_offset(brevo: Brevo) -> None:
    contact = brevo.get("/contacts", sort="asc", limit=1).json()["contacts"][0]
    assert _TIMESTAMP.match(contact["createdAt"]) and _TIMESTAMP.match(contact["modifiedAt"])
    modified = datetime.fromisoformat(contact["modifiedAt"])
    assert modified == T0 + timedelta(days=11, milliseconds=7)
    for zulu in running(make_shop(), time_offset=timedelta(0)):
        assert zulu.get("/contacts", limit=1).json()["contacts"][0]["createdAt"].endswith(".000Z")


def test_modified_since_is_strictly_after_and_accepts_offsets(brevo: Brevo) -> None:
    third = T0 + timedelta(days=13, milliseconds=21)  # person 3's modifiedAt
    assert _ids(brevo.get("/contacts", sort="asc", modifiedSince=third.isoformat())) == [4, 5, 6]
    just_before = third - timedelta(milliseconds=1)
    assert _ids(brevo.get("/contacts", sort="asc", modifiedSince=just_before.isoformat())) == [3, 4, 5, 6]
    in_paris = third.astimezone(ZoneInfo("Europe/Paris")).isoformat(timespec="milliseconds")
    assert _ids(brevo.get("/contacts", sort="asc", modifiedSince=in_paris)) == [4, 5, 6]
    created = brevo.get("/contacts", sort="asc", createdSince=(T0 + timedelta(days=5)).isoformat())
    assert _ids(created) == [6]


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01",
        "2026-01-01T00:00:00",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-01-01T00:00:00.000 02:00",
    ],
)
def test_malformed_or_unencoded_modified_since_is_400(brevo: Brevo, value: str) -> None:
    response = brevo.get("/contacts", modifiedSince=value)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_parameter"


def test_raw_plus_in_the_query_arrives_as_space_and_is_refused(brevo: Brevo) -> None:
    url = brevo.server.url + "/v3/contacts?modifiedSince=2026-01-01T00:00:00.000+02:00"
    response = httpx.get(url, headers=brevo.client.headers)
    assert response.status_code == 400
    assert "%2B" in response.json()["message"]


def test_list_and_segment_filters(brevo: Brevo) -> None:
    assert _ids(brevo.get("/contacts", sort="asc", listIds=3)) == [1, 3]
    both = brevo.get("/contacts", listIds=2, segmentId=1)
    assert both.status_code == 400 and both.json()["code"] == "invalid_parameter"
    in_list = brevo.get("/contacts/lists/3/contacts", sort="asc")
    assert _ids(in_list) == [1, 3]
    assert brevo.get("/contacts/lists/99/contacts", conform=False).status_code == 404
    equals = brevo.get("/contacts", filter='equals(FIRSTNAME,"First4")')
    assert _ids(equals) == [4]
    assert brevo.get("/contacts", filter="greater(FIRSTNAME,1)").status_code == 400


def test_no_snapshot_isolation_deletes_shift_later_offsets(brevo: Brevo) -> None:
    first = _ids(brevo.get("/contacts", sort="asc", limit=3))
    brevo.state.delete_contact(2)
    second = _ids(brevo.get("/contacts", sort="asc", limit=3, offset=3))
    assert first == [1, 2, 3] and second == [5, 6]  # 4 shifted into the page already read


def test_a_touch_moves_modified_at_but_keeps_the_creation_position(brevo: Brevo) -> None:
    since = (T0 + timedelta(days=30)).isoformat()
    assert _ids(brevo.get("/contacts", modifiedSince=since)) == []
    brevo.state.touch(2)
    assert _ids(brevo.get("/contacts", modifiedSince=since)) == [2]
    assert _ids(brevo.get("/contacts", sort="asc", limit=2)) == [1, 2]


def test_one_contact_by_each_identifier_type(brevo: Brevo) -> None:
    by_email = brevo.get("/contacts/person1%40shop.example")
    by_id = brevo.get("/contacts/1", identifierType="contact_id")
    assert by_email.json() == by_id.json()
    assert by_email.json()["statistics"]["messagesSent"][0]["campaignId"] == 1
    assert brevo.get("/contacts/PERSON1@shop.example", identifierType="email_id").json()["id"] == 1
    assert brevo.get("/contacts/nobody%40shop.example").status_code == 404
    assert brevo.get("/contacts/abc", identifierType="contact_id").status_code == 400
    assert brevo.get("/contacts/1", identifierType="nonsense", conform=False).status_code == 400


def test_campaign_stats_per_contact(brevo: Brevo) -> None:
    stats = brevo.get("/contacts/1/campaignStats").json()
    assert [m["campaignId"] for m in stats["messagesSent"]] == [1, 2]
    assert stats["opened"] == [
        {
            "campaignId": 1,
            "count": 2,
            "eventTime": "2026-01-21T16:00:00.000+02:00",
            "ip": stats["opened"][0]["ip"],
        }
    ]
    assert stats["clicked"][0]["links"][0]["url"] == "https://shop.example/p/1"
    bounced = brevo.get("/contacts/4/campaignStats").json()
    assert bounced["delivered"] == [] and len(bounced["hardBounces"]) == 1
    unsubscribed = brevo.get("/contacts/2/campaignStats").json()
    assert unsubscribed["unsubscriptions"]["userUnsubscription"][0]["campaignId"] == 1
    window = brevo.get("/contacts/1/campaignStats", startDate="2026-02-01", endDate="2026-02-28").json()
    assert [m["campaignId"] for m in window["messagesSent"]] == [2] and window["opened"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"startDate": "2026-01-01"},
        {"endDate": "2026-01-01"},
        {"startDate": "2026-01-01", "endDate": "2026-04-02"},
        {"startDate": "2026-02-01", "endDate": "2026-01-01"},
        {"startDate": "01/01/2026", "endDate": "2026-01-02"},
    ],
)
def test_campaign_stats_date_rules(brevo: Brevo, params: dict[str, str]) -> None:
    response = brevo.get("/contacts/1/campaignStats", **params)
    assert response.status_code == 400 and response.json()["code"] == "invalid_parameter"


def test_a_late_open_is_not_a_contact_modification(brevo: Brevo) -> None:
    before = brevo.get("/contacts/1").json()
    brevo.state.add_email_event(1, 2, "opened", T0 + timedelta(days=41))
    after = brevo.get("/contacts/1").json()
    assert after["modifiedAt"] == before["modifiedAt"]
    assert [o["campaignId"] for o in after["statistics"]["opened"]] == [1, 2]


def test_email_campaigns_filters_and_statistics(brevo: Brevo) -> None:
    only_global = brevo.get("/emailCampaigns", statistics="globalStats", excludeHtmlContent="true").json()
    first = only_global["campaigns"][0]
    assert first["name"] == "Newsletter" and first["htmlContent"] == ""
    assert first["statistics"]["linksStats"] == {}
    window = {
        "startDate": (T0 + timedelta(days=30)).isoformat(),
        "endDate": (T0 + timedelta(days=50)).isoformat(),
    }
    assert [c["id"] for c in brevo.get("/emailCampaigns", **window).json()["campaigns"]] == [2]
    assert brevo.get("/emailCampaigns", startDate=window["startDate"]).status_code == 400
    assert brevo.get("/emailCampaigns", status="draft").json()["count"] == 0
    assert brevo.get("/emailCampaigns/1").json()["statistics"]["globalStats"]["sent"] == 3
    assert brevo.get("/emailCampaigns/9", conform=False).status_code == 404


def test_orders_filter_by_modified_and_created_since(brevo: Brevo) -> None:
    modified = brevo.get("/orders", sort="asc", modifiedSince=(T0 + timedelta(days=18, hours=5)).isoformat())
    assert [o["id"] for o in modified.json()["orders"]] == ["O2"]  # strictly after O3's update
    created = brevo.get("/orders", createdSince=(T0 + timedelta(days=16)).isoformat())
    assert [o["id"] for o in created.json()["orders"]] == ["O2", "O3"]
    order = brevo.get("/orders", sort="asc", limit=1).json()["orders"][0]
    assert order["contact_id"] == 1 and order["email"] == "person1@shop.example"
    assert order["products"] == [{"productId": "P1", "quantity": 2, "price": 12.5}]
    assert brevo.get("/orders", modifiedSince="2026-01-01").status_code == 400


@pytest.fixture
def faulty() -> Iterator[Brevo]:
    yield from running(make_shop(), faults=Faults())


def test_fault_malformed_every_nth_record(faulty: Brevo) -> None:
    faulty.sim.faults.malformed_every = 2
    contacts = faulty.get("/contacts", conform=False, sort="asc").json()["contacts"]
    assert [c["id"] for c in contacts] == [1, None, 3, None, 5, None]
    assert contacts[1]["modifiedAt"] == "not-a-date"


def test_fault_duplicate_across_pages(faulty: Brevo) -> None:
    faulty.sim.faults.duplicate_across_pages = True
    assert _ids(faulty.get("/contacts", sort="asc", limit=3)) == [1, 2, 3]
    assert _ids(faulty.get("/contacts", sort="asc", limit=3, offset=3)) == [3, 4, 5, 6]


def test_fault_update_while_paging_bumps_modified_at(faulty: Brevo) -> None:
    faulty.sim.faults.update_while_paging = 2
    since = (T0 + timedelta(days=30)).isoformat()
    faulty.get("/contacts", limit=1)
    touched = faulty.get("/contacts", modifiedSince=since)
    assert 1 <= len(_ids(touched)) <= 2


def test_unknown_paths_answer_in_brevo_error_shape(brevo: Brevo) -> None:
    response = brevo.client.get("/nothing-here")
    assert response.status_code == 404
    assert set(response.json()) == {"code", "message"}
    assert_conforms("brevo", brevo.get("/contacts/attributes"))
