"""The Klaviyo simulator refuses what the real API refuses: auth and scopes, revision, media types, query
parameters, the filter grammar, cursors, rate limits; and every fault can be injected."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import pytest

from simulators.harness import Limits
from tests.simulators.test_klaviyo_support import FakeClock, Served, all_pages, headers, post, serve


@pytest.fixture
def served() -> Iterator[Served]:
    yield from serve(FakeClock())


def _error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/vnd.api+json"
    (error,) = response.json()["errors"]
    assert error["code"] == code and error["id"] and error["title"] and error["detail"]
    return error


# ----- auth, scopes, revision, media type ----------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("DROP", "not_authenticated"),
        ("Bearer pk_espdsim0000000000000000000000000full", "not_authenticated"),
        ("klaviyo-api-key pk_espdsim0000000000000000000000000full", "not_authenticated"),
        ("pk_espdsim0000000000000000000000000full", "not_authenticated"),
        ("Klaviyo-API-Key pk_wrong", "authentication_failed"),
    ],
)
def test_authorization_must_be_exact(served: Served, authorization: str, code: str) -> None:
    _error(served.client_with(Authorization=authorization).get("/api/profiles"), 401, code)


def test_key_without_scope_is_403_naming_the_scope(served: Served) -> None:
    served.state.add_api_key("pk_profiles_only", ["profiles:read"])
    client = served.client_with(**headers("pk_profiles_only"))
    assert client.get("/api/profiles").status_code == 200
    error = _error(client.get("/api/events"), 403, "permission_denied")
    assert "events:read" in error["detail"]
    read_only = served.client_with(**headers(served.sim.credentials["read_only_api_key"]))
    response = post(read_only, "/api/profile-import", {"data": {"type": "profile", "attributes": {}}})
    assert "profiles:write" in _error(response, 403, "permission_denied")["detail"]
    bulk_without_lists = "pk_no_lists"
    served.state.add_api_key(bulk_without_lists, ["profiles:write", "profiles:read"])
    response = post(served.client_with(**headers(bulk_without_lists)), "/api/profile-bulk-import-jobs", {})
    assert "lists:write" in _error(response, 403, "permission_denied")["detail"]


@pytest.mark.parametrize(
    "revision", ["DROP", "2026-7-15", "latest", "2026-02-30", "2021-01-01", "2999-01-01"]
)
def test_revision_header_is_required_and_validated(served: Served, revision: str) -> None:
    error = _error(served.client_with(revision=revision).get("/api/profiles"), 400, "invalid")
    assert error["source"]["parameter"] == "revision"


@pytest.mark.parametrize("revision", ["2026-07-15", "2026-10-15", "2024-02-15", "2026-07-15.pre"])
def test_published_revisions_are_accepted(served: Served, revision: str) -> None:
    assert served.client_with(revision=revision).get("/api/profiles").status_code == 200


@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_bodies_need_a_json_media_type(served: Served, media: str) -> None:
    body = b'{"data":{"type":"profile","attributes":{"email":"a@example.com"}}}'
    response = served.client.post("/api/profile-import", content=body, headers={"content-type": media})
    _error(response, 415, "unsupported_media_type")
    plain_json = served.client.post(
        "/api/profile-import", content=body, headers={"content-type": "application/json"}
    )
    assert plain_json.status_code in (200, 201)


def test_malformed_json_body_is_400(served: Served) -> None:
    response = served.client.post(
        "/api/profile-import", content=b"{", headers={"content-type": "application/json"}
    )
    _error(response, 400, "invalid")


# ----- query parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/api/profiles", {"page[size]": "0"}, "page[size]"),
        ("/api/profiles", {"page[size]": "101"}, "page[size]"),
        ("/api/profiles", {"page[size]": "ten"}, "page[size]"),
        ("/api/events", {"page[size]": "1001"}, "page[size]"),
        ("/api/metrics", {"page[size]": "10"}, "page[size]"),
        ("/api/profiles", {"sort": "first_name"}, "sort"),
        ("/api/events", {"sort": "-created"}, "sort"),
        ("/api/profiles", {"fields[profile]": "email,shoe_size"}, "fields[profile]"),
        ("/api/profiles", {"additional-fields[profile]": "everything"}, "additional-fields[profile]"),
        ("/api/events", {"include": "campaign"}, "include"),
        ("/api/profiles", {"limit": "5"}, "limit"),
    ],
)
def test_query_parameters_outside_the_spec_are_400(
    served: Served, path: str, params: dict[str, str], parameter: str
) -> None:
    assert _error(served.client.get(path, params=params), 400, "invalid")["source"]["parameter"] == parameter


def test_events_accept_page_size_1000_and_import_errors_cap_at_100(served: Served) -> None:
    assert served.client.get("/api/events", params={"page[size]": "1000"}).status_code == 200
    job = post(
        served.client,
        "/api/profile-bulk-import-jobs",
        {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {
                    "profiles": {"data": [{"type": "profile", "attributes": {"email": "a@example.com"}}]}
                },
            }
        },
    ).json()["data"]["id"]
    path = f"/api/profile-bulk-import-jobs/{job}/import-errors"
    assert served.client.get(path, params={"page[size]": "100"}).status_code == 200
    _error(served.client.get(path, params={"page[size]": "101"}), 400, "invalid")


@pytest.mark.parametrize(
    "expression",
    [
        'greater-than(updated,"2026-01-01T00:00:00Z")',  # quoted datetime
        "greater-or-equal(updated,2026-01-01T00:00:00Z)",  # operator not allowed for updated
        "equals(first_name,'Ann')",  # field not filterable
        "equals(email,ann@example.com)",  # unquoted string
        "greater-than(updated,yesterday)",
        "greater-than(updated,2026-01-01T00:00:00Z",  # unbalanced
        "greater-than(updated,2026-01-01T00:00:00Z) and x",
        "any(updated,[2026-01-01T00:00:00Z])",
        "",
    ],
)
def test_profile_filters_are_parsed_strictly(served: Served, expression: str) -> None:
    response = served.client.get("/api/profiles", params={"filter": expression})
    assert _error(response, 400, "invalid")["source"]["parameter"] == "filter"


@pytest.mark.parametrize(
    "expression",
    [
        "greater-than(updated,2026-01-01T00:00:00Z),less-than(updated,2026-03-01T00:00:00+00:00)",
        "less-than(created,2026-01-05T00:00:00)",
        'equals(external_id,"shop-1")',
        "equals(email,'a@example.com')",
        'any(id,["a","b"])',
    ],
)
def test_well_formed_profile_filters_are_accepted(served: Served, expression: str) -> None:
    assert served.client.get("/api/profiles", params={"filter": expression}).status_code == 200


@pytest.mark.parametrize(
    ("expression", "ok"),
    [
        ("greater-or-equal(timestamp,1767225600)", True),
        ("has(profile)", True),
        ('equals(metric_id,["a","b"])', True),
        ("has(profile,'x')", False),
        ("greater-than(timestamp,'1767225600')", False),
        ("equals(profile_id,['a','b'])", False),
        ("contains(metric_id,'a')", False),
    ],
)
def test_event_filters(served: Served, expression: str, ok: bool) -> None:
    response = served.client.get("/api/events", params={"filter": expression})
    assert response.status_code == (200 if ok else 400), response.text


# ----- cursors ------------------------------------------------------------------------------------


def test_cursors_are_opaque_signed_and_tied_to_filter_and_sort(served: Served) -> None:
    params = {"sort": "updated", "page[size]": "5", "filter": "greater-than(updated,2025-01-01T00:00:00Z)"}
    cursor = httpx.URL(served.client.get("/api/profiles", params=params).json()["links"]["next"]).params[
        "page[cursor]"
    ]
    assert served.client.get("/api/profiles", params={**params, "page[cursor]": cursor}).status_code == 200
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    for bad in (tampered, "abc", "eyJ9"):
        response = served.client.get("/api/profiles", params={**params, "page[cursor]": bad})
        assert _error(response, 400, "invalid")["source"]["parameter"] == "page[cursor]"
    for changed in ({"sort": "-updated"}, {"filter": "greater-than(updated,2025-06-01T00:00:00Z)"}):
        response = served.client.get("/api/profiles", params={**params, **changed, "page[cursor]": cursor})
        _error(response, 400, "invalid")


# ----- rate limits ---------------------------------------------------------------------------------


def _assert_throttled(response: httpx.Response, retry_after: int) -> None:
    error = _error(response, 429, "throttled")
    assert error["title"] == "Request was throttled."
    assert response.headers["Retry-After"] == str(retry_after)
    assert not [name for name in response.headers if name.lower().startswith("ratelimit-")]


def test_burst_window_per_operation(served: Served) -> None:
    served.clock.now = math.floor(served.clock.now) + 0.5
    for remaining in range(149, 139, -1):
        response = served.client.get("/api/metrics")
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "150"
        assert response.headers["RateLimit-Remaining"] == str(remaining)
    _assert_throttled(served.client.get("/api/metrics"), 1)
    assert served.client.get("/api/profiles").status_code == 200  # another operation, another bucket
    served.clock.advance(1)
    assert served.client.get("/api/metrics").status_code == 200


def test_steady_window_and_retry_after(served: Served) -> None:
    served.clock.now = math.ceil(served.clock.now / 60) * 60 + 0.5
    body = {
        "data": {
            "type": "data-privacy-deletion-job",
            "attributes": {
                "profile": {"data": {"type": "profile", "attributes": {"email": "nobody@example.com"}}}
            },
        }
    }
    for _ in range(20):
        for _ in range(3):
            assert post(served.client, "/api/data-privacy-deletion-jobs", body).status_code == 202
        _assert_throttled(post(served.client, "/api/data-privacy-deletion-jobs", body), 1)  # burst 3/s
        served.clock.advance(1)
    _assert_throttled(post(served.client, "/api/data-privacy-deletion-jobs", body), 40)  # steady 60/m
    served.clock.advance(40)
    assert post(served.client, "/api/data-privacy-deletion-jobs", body).status_code == 202


def test_predictive_analytics_has_its_own_lower_limit(served: Served) -> None:
    served.clock.now = math.floor(served.clock.now) + 0.5
    params = {"additional-fields[profile]": "predictive_analytics"}
    for _ in range(10):
        assert served.client.get("/api/profiles", params=params).headers["RateLimit-Limit"] == "150"
    _assert_throttled(served.client.get("/api/profiles", params=params), 1)
    plain = served.client.get("/api/profiles")
    assert plain.status_code == 200 and plain.headers["RateLimit-Limit"] == "750"


def test_limits_can_be_scaled_or_switched_off() -> None:
    for served_ in serve(FakeClock(), limits=Limits(scale=0.2)):
        statuses = [served_.client.get("/api/metrics").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]  # 10/s scaled to 2/s
    for served_ in serve(FakeClock(), limits=Limits(enabled=False)):
        assert {served_.client.get("/api/metrics").status_code for _ in range(15)} == {200}


# ----- faults --------------------------------------------------------------------------------------


def test_injected_server_errors_use_the_errors_envelope(served: Served) -> None:
    served.sim.faults.error_burst, served.sim.faults.error_status = 2, 503
    assert [served.client.get("/api/profiles").status_code for _ in range(3)] == [503, 503, 200]
    served.sim.faults.error_burst, served.sim.faults.error_status = 1, 500
    assert served.client.get("/api/events").json()["errors"][0]["code"] == "error"


def test_injected_403_is_a_cloudflare_html_page(served: Served) -> None:
    served.sim.faults.error_burst, served.sim.faults.error_status = 1, 403
    response = served.client.get("/api/profiles")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cf-mitigated"] == "challenge"
    with pytest.raises(ValueError):
        response.json()


def test_injected_429_storm_carries_retry_after(served: Served) -> None:
    faults = served.sim.faults
    faults.error_burst, faults.error_status, faults.retry_after_seconds = 2, 429, 7
    response = served.client.get("/api/profiles")
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response.json()["errors"][0]["code"] == "throttled"


def test_slow_responses_trip_client_timeouts(served: Served) -> None:
    served.sim.faults.slow_seconds = 0.5
    with pytest.raises(httpx.ReadTimeout):
        served.client.get("/api/metrics", timeout=0.1)


def test_auth_failure_after_n_requests(served: Served) -> None:
    served.sim.faults.auth_fail_after = 1
    assert served.client.get("/api/metrics").status_code == 200
    assert served.client.get("/api/metrics").status_code == 401


def test_malformed_records_in_a_page(served: Served) -> None:
    served.sim.faults.malformed_every = 3
    data = served.client.get("/api/profiles", params={"page[size]": "9"}).json()["data"]
    assert [i for i, p in enumerate(data) if p["attributes"]["updated"] == "not-a-date"] == [2, 5, 8]


def test_duplicates_across_pages(served: Served) -> None:
    served.sim.faults.duplicate_across_pages = True
    found = all_pages(served.client, "/api/profiles", {"page[size]": "5"})
    ids = [p["id"] for p in found]
    assert len(set(ids)) == 30 and len(ids) > 30


def test_records_updated_while_paging_come_round_again(served: Served) -> None:
    served.sim.faults.update_while_paging = 1
    found = all_pages(served.client, "/api/profiles", {"page[size]": "10", "sort": "updated"})
    ids = [p["id"] for p in found]
    assert len(set(ids)) == 30 and len(ids) > 30
