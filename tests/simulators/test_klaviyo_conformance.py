"""Every response the Klaviyo simulator sends for espd's operations validates against Klaviyo's OpenAPI
spec, and the simulator's operation table (scopes, limits, parameters, enums, filters) is the spec's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.harness import Faults
from simulators.klaviyo.operations import DATETIME, NONE, NUMBER, OPERATIONS, STRING, Operation
from tests.simulators.test_klaviyo_support import JSONAPI, FakeClock, Served, post, serve
from tests.support.spec_conformance import assert_conforms, load_spec_dict, register_patch


def _nullable_collection_links(spec: dict[str, Any]) -> None:
    """Real responses send `"prev": null` / `"next": null` (notes section 2.1), but `CollectionLinks`
    declares them as non-nullable strings; mark just those two members nullable."""
    links = spec["components"]["schemas"]["CollectionLinks"]["properties"]
    for name in ("prev", "next"):
        links[name]["nullable"] = True


register_patch("klaviyo", _nullable_collection_links)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    yield from serve(FakeClock(), faults=Faults(reject_records={"rejected@example.com"}))


def conforms(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:300]
    assert_conforms("klaviyo", response)
    return response.json() if response.content else {}


def test_get_profiles_conforms(served: Served) -> None:
    body = conforms(
        served.client.get(
            "/api/profiles",
            params={
                "additional-fields[profile]": "subscriptions,predictive_analytics",
                "sort": "-updated",
                "page[size]": "5",
                "include": "push-tokens",
            },
        ),
        200,
    )
    conforms(served.client.get(body["links"]["next"]), 200)
    conforms(served.client.get("/api/profiles", params={"fields[profile]": "email,location.country"}), 200)


def test_get_metrics_conforms(served: Served) -> None:
    conforms(served.client.get("/api/metrics"), 200)
    conforms(served.client.get("/api/metrics", params={"fields[metric]": "name,integration"}), 200)


def test_get_events_conforms(served: Served) -> None:
    metric = served.state.metric("Placed Order", "Shopify")
    params = {
        "filter": f'equals(metric_id,"{metric.id}")',
        "include": "profile,metric,attributions",
        "page[size]": "3",
    }
    body = conforms(served.client.get("/api/events", params=params), 200)
    assert body["included"]
    conforms(served.client.get(body["links"]["next"]), 200)
    conforms(served.client.get("/api/events", params={"fields[event]": "datetime,event_properties"}), 200)


def test_profile_writes_conform(served: Served) -> None:
    payload = {
        "data": {"type": "profile", "attributes": {"email": "conf@example.com", "properties": {"espd_x": 1}}}
    }
    created = conforms(post(served.client, "/api/profile-import", payload), 201)
    conforms(post(served.client, "/api/profile-import", payload), 200)
    profile_id = created["data"]["id"]
    patch = {"data": {"type": "profile", "id": profile_id, "attributes": {"properties": {"espd_x": 2}}}}
    response = served.client.patch(
        f"/api/profiles/{profile_id}",
        json=patch,
        params={"additional-fields[profile]": "subscriptions"},
        headers={"content-type": JSONAPI},
    )
    conforms(response, 200)


def test_bulk_import_job_responses_conform(served: Served) -> None:
    entries = [
        {"type": "profile", "attributes": {"email": email}}
        for email in ("b1@example.com", "not-an-email", "rejected@example.com")
    ]
    payload = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": entries}}}}
    job = conforms(post(served.client, "/api/profile-bulk-import-jobs", payload), 202)["data"]
    conforms(served.client.get(f"/api/profile-bulk-import-jobs/{job['id']}"), 200)
    served.clock.advance(0.45)
    conforms(
        served.client.get(f"/api/profile-bulk-import-jobs/{job['id']}", params={"include": "lists"}), 200
    )
    served.clock.advance(1)
    done = conforms(served.client.get(f"/api/profile-bulk-import-jobs/{job['id']}"), 200)
    assert done["data"]["attributes"]["status"] == "complete"
    errors = conforms(served.client.get(f"/api/profile-bulk-import-jobs/{job['id']}/import-errors"), 200)
    assert len(errors["data"]) == 2
    listed = conforms(served.client.get("/api/profile-bulk-import-jobs", params={"sort": "-created_at"}), 200)
    assert listed["data"][0]["id"] == job["id"]


def test_deletion_conforms(served: Served) -> None:
    payload = {
        "data": {
            "type": "data-privacy-deletion-job",
            "attributes": {
                "profile": {"data": {"type": "profile", "attributes": {"email": "b1@example.com"}}}
            },
        }
    }
    conforms(post(served.client, "/api/data-privacy-deletion-jobs", payload), 202)


def test_error_responses_conform(served: Served) -> None:
    conforms(served.client.get("/api/profiles", params={"page[size]": "0"}), 400)
    conforms(served.client_with(authorization="Klaviyo-API-Key nope").get("/api/metrics"), 401)
    served.state.add_api_key("pk_conformance_none", [])
    conforms(served.client_with(authorization="Klaviyo-API-Key pk_conformance_none").get("/api/events"), 403)
    conforms(served.client.get("/api/profile-bulk-import-jobs/unknown"), 404)
    response = served.client.post(
        "/api/profile-import", content=b"{}", headers={"content-type": "text/plain"}
    )
    conforms(response, 415)
    served.sim.faults.error_burst, served.sim.faults.error_status = 1, 503
    conforms(served.client.get("/api/profiles"), 503)
    served.sim.faults.error_burst, served.sim.faults.error_status = 1, 429
    conforms(served.client.get("/api/profiles"), 429)


# ----- the operation table is the spec's ------------------------------------------------------------


def _spec_operations() -> dict[str, dict[str, Any]]:
    spec = load_spec_dict("klaviyo")
    return {
        op["operationId"]: op
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and op.get("operationId") in OPERATIONS
    }


def _query_params(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "query"}


def _enum(schema: dict[str, Any]) -> frozenset[str]:
    return frozenset(schema.get("items", schema)["enum"])


def _limit(text: str) -> int:
    return int(text.split("/")[0])


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=lambda op: op.operation_id)
def test_operation_table_matches_the_spec(operation: Operation) -> None:
    op = _spec_operations()[operation.operation_id]
    assert set(operation.scopes) == set(op["x-klaviyo-scopes"])
    assert (operation.burst, operation.steady) == tuple(
        _limit(op["x-klaviyo-ratelimit"][k]) for k in ("burst", "steady")
    )
    params = _query_params(op)
    assert operation.allowed_params() == set(params)
    for kind, names in operation.fields.items():
        assert names == _enum(params[f"fields[{kind}]"]), kind
    if operation.sorts:
        assert operation.sorts == _enum(params["sort"])
    if operation.includes:
        assert operation.includes == _enum(params["include"])
    if operation.additional_fields:
        assert operation.additional_fields == _enum(params["additional-fields[profile]"])
    if operation.page_size:
        schema = params["page[size]"]
        size = operation.page_size
        assert (size.minimum, size.maximum, size.default) == (
            schema["minimum"],
            schema["maximum"],
            schema["default"],
        )
    spec_filters = op.get("x-klaviyo-filters", {})
    assert set(operation.filters) == set(spec_filters)
    for name, declared in spec_filters.items():
        ours = operation.filters[name]
        operators = declared["operators"]
        assert ours.single == frozenset(operators.get("single", operators.get("none", []))), name
        assert ours.listed == frozenset(operators.get("list", [])), name
        value = declared.get("value", {})
        assert ours.kind == _kind(value), name


def _kind(value: dict[str, Any]) -> str:
    """The filter value kind the spec declares: date-time strings, other strings, numbers, or no value."""
    if value.get("format") == "date-time":
        return DATETIME
    return {"string": STRING, "number": NUMBER}.get(value.get("type", ""), NONE)
