"""POST/PATCH handlers: single upsert, partial update, bulk import job creation and GDPR deletion."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from simulators.klaviyo.app import Call, json_response
from simulators.klaviyo.errors import KlaviyoError, invalid
from simulators.klaviyo.jobs import BulkJob, import_issue
from simulators.klaviyo.records import STRING_ATTRIBUTES, ulid
from simulators.klaviyo.resources import job_resource, profile_resource
from simulators.klaviyo.writes import ProfileWrite, apply, parse_profile, resolve, upsert, value_problem

MAX_BULK_PROFILES = 10_000
_PATCHABLE = frozenset(STRING_ATTRIBUTES) - {"_kx"}


def _member(container: Any, key: str, pointer: str, allowed: tuple[str, ...]) -> Any:
    """`container[key]`, after checking the container is an object with only `allowed` members."""
    if not isinstance(container, dict):
        raise invalid("Expected an object.", pointer=pointer or "/")
    for name in container:
        if name not in allowed:
            raise invalid(f"'{name}' is not a valid member here.", pointer=f"{pointer}/{name}")
    if key not in container:
        raise invalid(f"'{key}' is required.", pointer=f"{pointer}/{key}")
    return container[key]


def _expect_type(resource: Any, expected: str, pointer: str) -> None:
    if not isinstance(resource, dict) or resource.get("type") != expected:
        found = resource.get("type") if isinstance(resource, dict) else None
        raise KlaviyoError(
            409, "conflict", f"Expected type '{expected}', got {found!r}.", pointer=f"{pointer}/type"
        )


def _profile_response(call: Call, profile: Any, status: int) -> Response:
    resource = profile_resource(profile, call.base, call.query.fieldset("profile"), call.query.additional)
    return json_response({"data": resource, "links": {"self": resource["links"]["self"]}}, status)


def _reject_values(call: Call, write: ProfileWrite) -> None:
    problem = value_problem(write, call.api.faults.reject_records)
    if problem is not None:
        attribute, detail = problem
        raise invalid(detail, pointer=f"/data/attributes/{attribute}")


def create_or_update_profile(call: Call) -> Response:
    data = _member(call.body, "data", "", ("data",))
    write = parse_profile(data, "/data", needs_identifier=True)
    _reject_values(call, write)
    profile, created = upsert(call.api.state, write)
    return _profile_response(call, profile, 201 if created else 200)


def update_profile(call: Call) -> Response:
    path_id = call.request.path_params["id"]
    data = _member(call.body, "data", "", ("data",))
    write = parse_profile(data, "/data", allowed_strings=_PATCHABLE, needs_identifier=False)
    if write.profile_id != path_id:
        raise KlaviyoError(
            409, "conflict", "The id in the body must match the id in the URL.", pointer="/data/id"
        )
    _reject_values(call, write)
    state = call.api.state
    with state.lock:
        profile = resolve(state, write)
        assert profile is not None  # resolve() raises 404 for an unknown id
        apply(state, profile, write)
    return _profile_response(call, profile, 200)


def _bulk_entries(body: Any) -> tuple[list[Any], list[str]]:
    data = _member(body, "data", "", ("data",))
    _expect_type(data, "profile-bulk-import-job", "/data")
    attributes = _member(data, "attributes", "/data", ("type", "attributes", "relationships"))
    profiles = _member(attributes, "profiles", "/data/attributes", ("profiles",))
    entries = _member(profiles, "data", "/data/attributes/profiles", ("data",))
    if not isinstance(entries, list) or not entries:
        raise invalid("'profiles.data' must be a non-empty list.", pointer="/data/attributes/profiles/data")
    if len(entries) > MAX_BULK_PROFILES:
        raise invalid(
            f"A job may hold at most {MAX_BULK_PROFILES} profiles.", pointer="/data/attributes/profiles/data"
        )
    lists = (data.get("relationships") or {}).get("lists", {}).get("data", [])
    return entries, [item.get("id") for item in lists if isinstance(item, dict)]


def bulk_import_profiles(call: Call) -> Response:
    entries, lists = _bulk_entries(call.body)
    writes = [
        parse_profile(entry, f"/data/attributes/profiles/data/{index}", needs_identifier=True)
        for index, entry in enumerate(entries)
    ]
    issues = {}
    for index, write in enumerate(writes):
        problem = value_problem(write, call.api.faults.reject_records)
        if problem is not None:
            issues[index] = import_issue(index, write, "invalid", problem[1], problem[0])
    state = call.api.state
    job = BulkJob(ulid(state.salt, state.next_serial()), state.clock(), writes, issues, lists)
    state.add_job(job)
    with state.lock:
        resource = job_resource(job, state, call.base, call.query.fieldset("profile-bulk-import-job"))
    return json_response({"data": resource, "links": {"self": resource["links"]["self"]}}, 202)


def request_deletion(call: Call) -> Response:
    data = _member(call.body, "data", "", ("data",))
    _expect_type(data, "data-privacy-deletion-job", "/data")
    attributes = _member(data, "attributes", "/data", ("type", "attributes"))
    profile = _member(
        _member(attributes, "profile", "/data/attributes", ("profile",)),
        "data",
        "/data/attributes/profile",
        ("data",),
    )
    pointer = "/data/attributes/profile/data"
    _expect_type(profile, "profile", pointer)
    given = {"id": profile.get("id")}
    identifiers = _member(profile, "attributes", pointer, ("type", "id", "attributes"))
    for name in identifiers if isinstance(identifiers, dict) else ():
        if name not in ("email", "phone_number"):
            raise invalid(
                f"'{name}' is not a valid field for the resource 'profile'.",
                pointer=f"{pointer}/attributes/{name}",
            )
    given.update(identifiers)
    chosen = {name: value for name, value in given.items() if value is not None}
    if len(chosen) != 1:
        raise invalid("Exactly one of 'id', 'email' or 'phone_number' must be given.", pointer=pointer)
    ((name, value),) = chosen.items()
    if not isinstance(value, str) or not value:
        raise invalid(f"'{name}' must be a non-empty string.", pointer=pointer)
    call.api.state.request_deletion(name, value)
    return Response(status_code=202)
