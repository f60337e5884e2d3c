"""Writing to the Klaviyo simulator: single upserts, partial updates, bulk import jobs and their lifecycle,
and GDPR deletions, all over real HTTP with a fake clock driving job phases and delays."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.harness import Faults
from tests.simulators.test_klaviyo_support import JSONAPI, FakeClock, Served, all_pages, post, serve


@pytest.fixture
def served() -> Iterator[Served]:
    yield from serve(FakeClock(), faults=Faults(reject_records={"rejected@example.com"}))


def upsert(
    client: httpx.Client, attributes: dict[str, Any], meta: dict[str, Any] | None = None
) -> httpx.Response:
    data: dict[str, Any] = {"type": "profile", "attributes": attributes}
    if meta is not None:
        data["meta"] = meta
    return post(client, "/api/profile-import", {"data": data})


def bulk_payload(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    entries = [{"type": "profile", "attributes": attributes} for attributes in profiles]
    return {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": entries}}}}


def test_profile_import_creates_then_updates_and_merges_properties(served: Served) -> None:
    created = upsert(served.client, {"email": "new@example.com", "properties": {"espd_a": 1, "espd_b": "x"}})
    assert created.status_code == 201
    assert created.headers["content-type"] == JSONAPI
    first_updated = created.json()["data"]["attributes"]["updated"]
    served.clock.advance(5)
    updated = upsert(
        served.client,
        {"email": "NEW@example.com", "properties": {"espd_a": 2}},
        {"patch_properties": {"unset": "espd_b", "append": {"espd_tags": "vip"}}},
    )
    assert updated.status_code == 200
    assert updated.json()["data"]["id"] == created.json()["data"]["id"]
    assert updated.json()["data"]["attributes"]["updated"] > first_updated
    profile = served.state.find_profile(email="new@example.com")
    assert profile.properties == {"espd_a": 2, "espd_tags": ["vip"]}


def test_every_write_bumps_updated_even_without_changes(served: Served) -> None:
    profile = served.state.find_profile(email="person1@example.com")
    before = profile.updated
    assert upsert(served.client, {"email": "person1@example.com"}).status_code == 200
    assert profile.updated > before


def test_top_level_null_clears_and_omitted_fields_stay(served: Served) -> None:
    upsert(served.client, {"email": "person3@example.com", "first_name": None, "location": {"city": "Oslo"}})
    profile = served.state.find_profile(email="person3@example.com")
    assert profile.get("first_name") is None
    assert profile.get("last_name") == "Last3"
    assert profile.location == {"country": "US", "timezone": "America/New_York", "city": "Oslo"}


def test_patch_profile_by_id(served: Served) -> None:
    profile = served.state.find_profile(email="person4@example.com")
    body = {
        "data": {
            "type": "profile",
            "id": profile.id,
            "attributes": {"properties": {"espd_score": 0.5}},
            "meta": {"patch_properties": {"unset": ["missing_key"]}},
        }
    }
    response = served.client.patch(
        f"/api/profiles/{profile.id}", json=body, headers={"content-type": JSONAPI}
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"]["properties"] == {"espd_score": 0.5}
    wrong_id = served.client.patch("/api/profiles/NOPE", json=body, headers={"content-type": JSONAPI})
    assert wrong_id.status_code == 409
    body["data"]["id"] = "01UNKNOWNPROFILE0000000000"
    missing = served.client.patch(
        "/api/profiles/01UNKNOWNPROFILE0000000000", json=body, headers={"content-type": JSONAPI}
    )
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "not_found"


def test_identifiers_of_two_profiles_conflict(served: Served) -> None:
    assert upsert(served.client, {"email": "person6@example.com", "external_id": "ext-6"}).status_code == 200
    response = upsert(served.client, {"email": "person7@example.com", "external_id": "ext-6"})
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "duplicate_profile"


@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({"email": "a@example.com", "last_nam": "x"}, "/data/attributes/last_nam"),
        ({"first_name": "only a name"}, "/data/attributes"),
        ({"email": "not-an-email"}, "/data/attributes/email"),
        ({"email": "a@example.com", "properties": ["list"]}, "/data/attributes/properties"),
        ({"email": "rejected@example.com"}, "/data/attributes/email"),
    ],
)
def test_bad_profiles_are_400_with_a_pointer(
    served: Served, attributes: dict[str, Any], pointer: str
) -> None:
    response = upsert(served.client, attributes)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "invalid" and error["source"]["pointer"] == pointer


def test_unknown_attribute_message_matches_the_real_api(served: Served) -> None:
    error = upsert(served.client, {"email": "a@example.com", "last_nam": "x"}).json()["errors"][0]
    assert error["detail"] == "'last_nam' is not a valid field for the resource 'profile'."


def test_wrong_resource_type_is_refused(served: Served) -> None:
    response = post(served.client, "/api/profile-import", {"data": {"type": "event", "attributes": {}}})
    assert response.status_code == 409


def _job_status(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/profile-bulk-import-jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()["data"]["attributes"]


def test_bulk_job_lifecycle_with_import_errors(served: Served) -> None:
    profiles = [{"email": f"bulk{n}@example.com", "properties": {"espd_n": n}} for n in range(8)]
    profiles += [{"email": "broken-email"}, {"email": "rejected@example.com", "external_id": "r-1"}]
    response = post(served.client, "/api/profile-bulk-import-jobs", bulk_payload(profiles))
    assert response.status_code == 202, response.text
    job = response.json()["data"]
    assert job["attributes"]["status"] == "queued" and job["attributes"]["total_count"] == 10
    assert served.state.find_profile(email="bulk0@example.com") is None
    served.clock.advance(0.45)  # queued 0.2 s, then processing for 0.5 s: half way
    halfway = _job_status(served.client, job["id"])
    assert halfway["status"] == "processing"
    assert 0 < halfway["completed_count"] + halfway["failed_count"] < 10
    assert halfway["started_at"] is not None and halfway["completed_at"] is None
    served.clock.advance(1)
    done = _job_status(served.client, job["id"])
    assert done["status"] == "complete"
    assert (done["completed_count"], done["failed_count"]) == (8, 2)
    assert served.state.find_profile(email="bulk7@example.com").properties == {"espd_n": 7}
    errors = all_pages(
        served.client, f"/api/profile-bulk-import-jobs/{job['id']}/import-errors", {"page[size]": "1"}
    )
    assert [e["attributes"]["original_payload"] for e in errors] == profiles[8:]
    assert errors[0]["attributes"]["source"]["pointer"] == "/data/attributes/profiles/data/8/attributes/email"


def test_bulk_job_can_be_cancelled(served: Served) -> None:
    served.state.cancel_next_jobs = 1
    job = post(
        served.client, "/api/profile-bulk-import-jobs", bulk_payload([{"email": "c@example.com"}])
    ).json()
    served.clock.advance(2)
    status = _job_status(served.client, job["data"]["id"])
    assert status["status"] == "cancelled" and status["completed_count"] == 0
    assert served.state.find_profile(email="c@example.com") is None


def test_bulk_jobs_are_listed_by_status_and_creation_time(served: Served) -> None:
    """One list call reads many jobs' progress (get_bulk_import_profiles_jobs, its own rate bucket)."""
    ids = []
    for n in range(3):
        served.clock.advance(0.3)  # queued for 0.2 s: the older two are processing when the third is new
        payload = bulk_payload([{"email": f"listed{n}@example.com"}])
        ids.append(post(served.client, "/api/profile-bulk-import-jobs", payload).json()["data"]["id"])
    newest_first = all_pages(
        served.client, "/api/profile-bulk-import-jobs", {"sort": "-created_at", "page[size]": "2"}
    )
    assert [job["id"] for job in newest_first] == ids[::-1]
    assert [job["attributes"]["status"] for job in newest_first] == ["queued", "processing", "processing"]
    queued = all_pages(served.client, "/api/profile-bulk-import-jobs", {"filter": "equals(status,'queued')"})
    assert [job["id"] for job in queued] == ids[2:]
    served.clock.advance(2)
    finished = all_pages(
        served.client,
        "/api/profile-bulk-import-jobs",
        {"filter": "any(status,['complete','processing'])", "fields[profile-bulk-import-job]": "status"},
    )
    assert [job["id"] for job in finished] == ids
    assert {tuple(job["attributes"]) for job in finished} == {("status",)}
    unknown = served.client.get("/api/profile-bulk-import-jobs", params={"filter": "equals(total_count,1)"})
    assert unknown.status_code == 400


def test_bulk_limits(served: Served) -> None:
    too_many = bulk_payload([{"email": f"x{n}@example.com"} for n in range(10_001)])
    response = post(served.client, "/api/profile-bulk-import-jobs", too_many)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/profiles/data"
    huge_profile = bulk_payload([{"email": "big@example.com", "properties": {"espd_blob": "x" * 110_000}}])
    assert post(served.client, "/api/profile-bulk-import-jobs", huge_profile).status_code == 413
    too_big = bulk_payload(
        [{"email": f"b{n}@example.com", "properties": {"espd_blob": "x" * 90_000}} for n in range(60)]
    )
    assert post(served.client, "/api/profile-bulk-import-jobs", too_big).status_code == 413
    no_identifier = bulk_payload([{"email": "ok@example.com"}, {"first_name": "anon"}])
    response = post(served.client, "/api/profile-bulk-import-jobs", no_identifier)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/profiles/data/1/attributes"


def test_unknown_job_is_404(served: Served) -> None:
    response = served.client.get("/api/profile-bulk-import-jobs/01NOSUCHJOB000000000000000")
    assert response.status_code == 404 and response.json()["errors"][0]["code"] == "not_found"


def _deletion(**identifiers: str) -> dict[str, Any]:
    profile: dict[str, Any] = {"type": "profile", "attributes": {}}
    if "id" in identifiers:
        profile["id"] = identifiers.pop("id")
    profile["attributes"].update(identifiers)
    return {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": profile}}}}


def test_deletion_is_202_empty_and_takes_effect_after_a_delay(served: Served) -> None:
    target = served.state.find_profile(email="person8@example.com")
    response = post(served.client, "/api/data-privacy-deletion-jobs", _deletion(email="person8@example.com"))
    assert response.status_code == 202 and response.content == b""
    ids = {p["id"] for p in all_pages(served.client, "/api/profiles", {"page[size]": "100"})}
    assert target.id in ids  # still there until the job runs
    served.clock.advance(1.5)
    ids = {p["id"] for p in all_pages(served.client, "/api/profiles", {"page[size]": "100"})}
    assert target.id not in ids
    # Upserting the same email later makes a new profile, never the deleted one.
    assert upsert(served.client, {"email": "person8@example.com"}).json()["data"]["id"] != target.id
    by_id = post(
        served.client,
        "/api/data-privacy-deletion-jobs",
        _deletion(id=served.state.find_profile(email="person9@example.com").id),
    )
    assert by_id.status_code == 202


@pytest.mark.parametrize(
    "identifiers",
    [
        {"email": "person1@example.com", "phone_number": "+15005550006"},
        {},
        {"id": "X", "email": "a@example.com"},
    ],
)
def test_deletion_needs_exactly_one_identifier(served: Served, identifiers: dict[str, str]) -> None:
    response = post(served.client, "/api/data-privacy-deletion-jobs", _deletion(**identifiers))
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "invalid"
