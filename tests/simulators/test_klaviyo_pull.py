"""Pulling from the Klaviyo simulator over real HTTP: profile paging and incremental filters, metrics with
repeated names, events (including late ones), and deleted profiles vanishing from pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from simulators.shops import generate
from tests.simulators.test_klaviyo_support import T0, FakeClock, Served, all_pages, serve


@pytest.fixture
def served() -> Iterator[Served]:
    yield from serve(FakeClock())


def test_profiles_page_by_cursor_without_overlap_or_gap(served: Served) -> None:
    found = all_pages(served.client, "/api/profiles", {"page[size]": "7", "sort": "updated"})
    ids = [p["id"] for p in found]
    assert len(ids) == len(set(ids)) == 30
    updated = [p["attributes"]["updated"] for p in found]
    assert updated == sorted(updated)


def test_descending_sort_walks_backwards_with_ties_broken_by_id(served: Served) -> None:
    up = [p["id"] for p in all_pages(served.client, "/api/profiles", {"page[size]": "4", "sort": "created"})]
    down = [
        p["id"] for p in all_pages(served.client, "/api/profiles", {"page[size]": "4", "sort": "-created"})
    ]
    assert down == list(reversed(up))


def test_last_page_has_null_next_and_default_page_size_is_20(served: Served) -> None:
    first = served.client.get("/api/profiles").json()
    assert len(first["data"]) == 20
    last = served.client.get(first["links"]["next"]).json()
    assert len(last["data"]) == 10
    assert last["links"]["next"] is None


def test_incremental_filter_is_exclusive_and_sees_touched_profiles(served: Served) -> None:
    state = served.state
    boundary = state.find_profile(email="person10@example.com").updated
    stamp = boundary.strftime("%Y-%m-%dT%H:%M:%SZ")
    params = {"filter": f"greater-than(updated,{stamp})", "sort": "updated", "page[size]": "100"}
    newer = {p["attributes"]["email"] for p in all_pages(served.client, "/api/profiles", params)}
    assert "person10@example.com" not in newer  # greater-than is strict
    assert "person11@example.com" in newer
    assert "person3@example.com" not in newer
    state.touch_profile(state.find_profile(email="person3@example.com").id)
    newer = {p["attributes"]["email"] for p in all_pages(served.client, "/api/profiles", params)}
    assert "person3@example.com" in newer


def test_window_filters_and_identifier_lookups(served: Served) -> None:
    low = (T0 + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    high = (T0 + timedelta(days=9)).strftime("%Y-%m-%dT%H:%M:%SZ")
    window = all_pages(
        served.client, "/api/profiles", {"filter": f"greater-than(created,{low}),less-than(created,{high})"}
    )
    assert sorted(p["attributes"]["first_name"] for p in window) == ["First6", "First7", "First8"]
    one = served.client.get("/api/profiles", params={"filter": "equals(email,'PERSON4@example.com')"}).json()
    assert [p["attributes"]["first_name"] for p in one["data"]] == ["First4"]
    several = served.client.get(
        "/api/profiles",
        params={"filter": 'any(email,["person1@example.com","person2@example.com","nobody@x.io"])'},
    ).json()
    assert len(several["data"]) == 2


def test_sparse_fields_and_additional_fields(served: Served) -> None:
    body = served.client.get(
        "/api/profiles",
        params={
            "fields[profile]": "email,location.country,subscriptions",
            "additional-fields[profile]": "subscriptions,predictive_analytics",
            "filter": "equals(email,'person2@example.com')",
        },
    ).json()
    attributes = body["data"][0]["attributes"]
    assert attributes == {
        "email": "person2@example.com",
        "location": {"country": "US"},
        "subscriptions": attributes["subscriptions"],
    }
    marketing = attributes["subscriptions"]["email"]["marketing"]
    assert marketing["consent"] == "UNSUBSCRIBED" and marketing["can_receive_email_marketing"] is False
    full = served.client.get(
        "/api/profiles",
        params={
            "additional-fields[profile]": "predictive_analytics",
            "filter": "equals(email,'person2@example.com')",
        },
    ).json()
    predictive = full["data"][0]["attributes"]["predictive_analytics"]
    assert predictive["historic_clv"] == 25.0 and predictive["historic_number_of_orders"] == 1
    plain = served.client.get("/api/profiles", params={"page[size]": "1"}).json()["data"][0]["attributes"]
    assert "subscriptions" not in plain and "predictive_analytics" not in plain


def test_metric_names_repeat_across_integrations(served: Served) -> None:
    metrics = all_pages(served.client, "/api/metrics", {"fields[metric]": "name,integration"})
    placed = [m for m in metrics if m["attributes"]["name"] == "Placed Order"]
    assert sorted(m["attributes"]["integration"]["name"] for m in placed) == ["API", "Shopify"]
    assert len({m["id"] for m in placed}) == 2
    shopify = served.client.get(
        "/api/metrics", params={"filter": "equals(integration.name,'Shopify')"}
    ).json()
    assert sorted(m["attributes"]["name"] for m in shopify["data"]) == ["Ordered Product", "Placed Order"]


def test_events_by_metric_with_included_profiles(served: Served) -> None:
    state = served.state
    metric = state.metric("Placed Order", "Shopify")
    params = {
        "filter": f'equals(metric_id,"{metric.id}"),greater-or-equal(datetime,2026-02-20T00:00:00Z)',
        "sort": "datetime",
        "page[size]": "4",
        "include": "profile",
        "fields[profile]": "email",
    }
    first = served.client.get("/api/events", params=params).json()
    assert {i["id"] for i in first["included"]} == {
        e["relationships"]["profile"]["data"]["id"] for e in first["data"]
    }
    assert all(set(i["attributes"]) == {"email"} for i in first["included"])
    events = all_pages(served.client, "/api/events", params)
    # orders are on day 40+n with n = 1..30; 2026-02-20 is day 50, so n >= 10 (the order time has 0.5 s)
    assert len(events) == 21
    assert all(e["attributes"]["event_properties"]["$value"] == 25.0 for e in events)
    moments = [e["attributes"]["datetime"] for e in events]
    assert moments == sorted(moments)
    assert all(e["attributes"]["timestamp"] % 1 == 0 for e in events)


def test_cached_event_json_matches_a_fresh_build_and_the_malformed_path(served: Served) -> None:
    metric = served.state.metric("Placed Order", "Shopify")
    params = {
        "filter": f'equals(metric_id,"{metric.id}")',
        "page[size]": "5",
        "include": "profile",
        "fields[event]": "datetime,event_properties",
    }
    first = served.client.get("/api/events", params=params)
    again = served.client.get("/api/events", params=params)
    assert first.content == again.content  # the second page came from the cache
    served.sim.faults.malformed_every = 1000  # this path builds every resource afresh
    fresh = served.client.get("/api/events", params=params).json()
    assert fresh == first.json()
    assert set(fresh["data"][0]["attributes"]) == {"datetime", "event_properties"}


def test_late_event_with_old_datetime_is_served_and_events_are_immutable(served: Served) -> None:
    state = served.state
    metric = state.metric("Opened Email", "Klaviyo")
    profile = state.find_profile(email="person7@example.com")
    params = {"filter": f'equals(metric_id,"{metric.id}")', "sort": "datetime", "page[size]": "200"}
    before = all_pages(served.client, "/api/events", params)
    late = state.add_event(metric.id, profile.id, T0 + timedelta(days=1), {"Campaign Name": "Backfill"})
    after = all_pages(served.client, "/api/events", params)
    assert len(after) == len(before) + 1
    assert after[0]["id"] == late.id  # the oldest datetime sorts first although it arrived last
    assert after[0]["attributes"]["event_properties"] == {"Campaign Name": "Backfill"}
    assert served.client.patch(f"/api/events/{late.id}", json={}).status_code in (404, 405)


def test_deleted_profile_disappears_with_its_events(served: Served) -> None:
    state = served.state
    gone = state.find_profile(email="person5@example.com")
    state.delete_profile(gone.id)
    ids = {p["id"] for p in all_pages(served.client, "/api/profiles", {"page[size]": "100"})}
    assert gone.id not in ids and len(ids) == 29
    events = served.client.get("/api/events", params={"filter": f'equals(profile_id,"{gone.id}")'}).json()
    assert events["data"] == []


def test_generated_shop_seeds_only_what_klaviyo_knows() -> None:
    shop = generate("tiny", seed=11)
    on_klaviyo = {p.email.lower() for p in shop.people_on("klaviyo")}
    for served_ in serve(FakeClock(), shop):
        emails = {
            p["attributes"]["email"]
            for p in all_pages(served_.client, "/api/profiles", {"page[size]": "100"})
        }
        assert emails == on_klaviyo
        klaviyo_campaigns = {c.campaign_id for c in shop.campaigns_on("klaviyo")}
        received = served_.state.metric("Received Email", "Klaviyo")
        expected = sum(
            1
            for e in shop.events
            if e.kind == "received" and e.campaign_id in klaviyo_campaigns and e.person_id in _ids(shop)
        )
        assert len(served_.state.events_of(received.id)) == expected > 0


def _ids(shop) -> set[int]:  # type: ignore[no-untyped-def]
    return {p.person_id for p in shop.people_on("klaviyo")}
