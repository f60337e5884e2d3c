"""GET handlers: profiles, metrics and events (cursor paging), bulk import jobs (listed or one), their errors.

Paging-related faults from `Faults` are applied here: `malformed_every` breaks every Nth record of a
page, `duplicate_across_pages` repeats a page's last record on the next page, and `update_while_paging`
bumps `updated` on N profiles of each page served (they move behind the cursor and come round again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlencode

from simulators.klaviyo.app import Call, json_response, json_text_response
from simulators.klaviyo.errors import KlaviyoError
from simulators.klaviyo.filters import Condition
from simulators.klaviyo.operations import METRICS_PAGE_SIZE
from simulators.klaviyo.paging import UNBOUNDED, Bounds, SortKey, bounds_for, page_slice
from simulators.klaviyo.records import Event, Profile
from simulators.klaviyo.resources import (
    event_resource,
    import_error_resource,
    job_resource,
    metric_resource,
    profile_attributes,
    profile_resource,
    project,
)
from simulators.klaviyo.state import PROFILE_FILTER_VALUES, PROFILE_SORT_KEYS

T = TypeVar("T")
_IDENTIFIER_FILTERS = ("id", "email", "phone_number", "external_id")
_RANGE_SORTS = ("created", "updated", "datetime", "timestamp")


def _links(call: Call, next_cursor: str | None) -> dict[str, Any]:
    self_url = str(call.request.url)
    links: dict[str, Any] = {"self": self_url, "next": None, "prev": None}
    if next_cursor is not None:
        params = [(k, v) for k, v in call.request.query_params.multi_items() if k != "page[cursor]"]
        params.append(("page[cursor]", next_cursor))
        links["next"] = f"{call.base}{call.request.url.path}?{urlencode(params)}"
    return links


def _keep(conditions: Sequence[Condition], values: dict[str, Callable[[T], Any]]) -> Callable[[T], bool]:
    return lambda item: all(c.matches(values[c.field](item)) for c in conditions)


def _paged(
    call: Call,
    context: str,
    items: Sequence[T],
    sort_key: Callable[[T], SortKey],
    keep: Callable[[T], bool],
    *,
    descending: bool = False,
    bounds: Bounds = UNBOUNDED,
    size: int,
) -> tuple[list[T], str | None]:
    """Cut one page after the request's cursor and sign the cursor of the next one (None on the last)."""
    codec = call.api.cursors
    after = codec.decode(context, call.query.cursor) if call.query.cursor else None
    page, more = page_slice(
        items, sort_key, descending=descending, after=after, keep=keep, size=size, bounds=bounds
    )
    if not more or not page:
        return page, None
    anchor = page[-2] if call.api.faults.duplicate_across_pages and len(page) > 1 else page[-1]
    return page, codec.encode(context, sort_key(anchor))


def _malform(resources: list[dict[str, Any]], call: Call, field: str) -> None:
    every = call.api.faults.malformed_every
    if not every:
        return
    for index in range(every - 1, len(resources), every):
        resources[index]["attributes"][field] = "not-a-date"


def _sort(call: Call, default: str) -> tuple[str, bool]:
    sort = call.query.sort or default
    return sort.lstrip("-"), sort.startswith("-")


def _profile_candidates(call: Call, sort_field: str) -> Sequence[Profile]:
    """Identifier filters (equals/any on id, email, ...) use the indexes; others walk the sort order."""
    state = call.api.state
    for condition in call.query.conditions:
        if condition.field in _IDENTIFIER_FILTERS and condition.operator in ("equals", "any"):
            values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
            found = {p.id: p for v in values if (p := state.lookup(condition.field, v)) is not None}
            return sorted(found.values(), key=PROFILE_SORT_KEYS[sort_field])
    return state.sorted_profiles(sort_field)


def _lowered_emails(conditions: Sequence[Condition]) -> list[Condition]:
    def lower(value: Any) -> Any:
        return tuple(v.lower() for v in value) if isinstance(value, tuple) else value.lower()

    return [replace(c, value=lower(c.value)) if c.field == "email" else c for c in conditions]


def get_profiles(call: Call) -> Any:
    state, query = call.api.state, call.query
    sort_field, descending = _sort(call, "id")
    conditions = _lowered_emails(query.conditions)
    with state.lock:
        page, cursor = _paged(
            call,
            f"profiles|{query.filter_text}|{query.sort}",
            _profile_candidates(call, sort_field),
            PROFILE_SORT_KEYS[sort_field],
            _keep(conditions, PROFILE_FILTER_VALUES),
            descending=descending,
            bounds=bounds_for(conditions, sort_field) if sort_field in _RANGE_SORTS else UNBOUNDED,
            size=query.page_size or 20,
        )
        data = [
            profile_resource(p, call.base, query.fieldset("profile"), query.additional, query.includes)
            for p in page
        ]
        for profile in page[: call.api.faults.update_while_paging]:
            state.touch_profile(profile.id)
    _malform(data, call, "updated")
    return json_response({"data": data, "links": _links(call, cursor)})


_METRIC_VALUES: dict[str, Callable[[Any], Any]] = {
    "integration.name": lambda m: m.integration.name,
    "integration.category": lambda m: m.integration.category,
}


def get_metrics(call: Call) -> Any:
    query, state = call.query, call.api.state
    with state.lock:
        metrics = sorted(state.metrics.values(), key=lambda m: m.id)
    page, cursor = _paged(
        call,
        f"metrics|{query.filter_text}",
        metrics,
        lambda m: (m.id, m.id),
        _keep(query.conditions, _METRIC_VALUES),
        size=METRICS_PAGE_SIZE,
    )
    data = [metric_resource(m, call.base, query.fieldset("metric")) for m in page]
    return json_response({"data": data, "links": _links(call, cursor)})


_EVENT_VALUES: dict[str, Callable[[Event], Any]] = {
    "metric_id": lambda e: e.metric_id,
    "profile_id": lambda e: e.profile_id,
    "metric": lambda e: e.metric_id,
    "profile": lambda e: e.profile_id,
    "datetime": lambda e: e.datetime,
    "timestamp": lambda e: e.timestamp,
}
_EVENT_SORT_KEYS: dict[str, Callable[[Event], SortKey]] = {
    "datetime": lambda e: (e.datetime, e.id),
    "timestamp": lambda e: (e.timestamp, e.id),
}


def _equal_to(conditions: Sequence[Condition], field: str) -> str | None:
    found = [
        c.value
        for c in conditions
        if c.field == field and c.operator == "equals" and isinstance(c.value, str)
    ]
    return found[0] if found else None


def _event_included(call: Call, page: list[Event]) -> list[dict[str, Any]]:
    """Each profile and metric of the page once (built only the first time a page names it)."""
    state, query, base = call.api.state, call.query, call.base
    included: dict[tuple[str, str], dict[str, Any]] = {}
    for event in page:
        key = ("profile", event.profile_id)
        if "profile" in query.includes and key not in included:
            profile = state.profiles.get(event.profile_id)
            if profile is not None:
                included[key] = {
                    "type": "profile",
                    "id": profile.id,
                    "attributes": project(profile_attributes(profile), query.fieldset("profile")),
                    "links": {"self": f"{base}/api/profiles/{profile.id}/"},
                }
        if "metric" in query.includes and ("metric", event.metric_id) not in included:
            metric = state.metrics[event.metric_id]
            included[("metric", metric.id)] = metric_resource(metric, base, query.fieldset("metric"))
    return list(included.values())


def get_events(call: Call) -> Any:
    state, query = call.api.state, call.query
    sort_field, descending = _sort(call, "datetime")
    conditions = query.conditions
    with state.lock:
        items = state.events_for(_equal_to(conditions, "metric_id"), _equal_to(conditions, "profile_id"))
        page, cursor = _paged(
            call,
            f"events|{query.filter_text}|{query.sort}",
            items,
            _EVENT_SORT_KEYS[sort_field],
            _keep(conditions, _EVENT_VALUES),
            descending=descending,
            bounds=bounds_for(conditions, sort_field),
            size=query.page_size or 200,
        )
        included = _event_included(call, page)
        rest: dict[str, Any] = {"links": _links(call, cursor)}
        if query.includes - {"attributions"}:
            rest["included"] = included
        if not call.api.faults.malformed_every:
            cache, base, fields = call.api.event_json, call.base, query.fieldset("event")
            texts = [cache.text(e, base, fields, query.includes) for e in page]
            return json_text_response(texts, rest)
        data = [event_resource(e, call.base, query.fieldset("event"), query.includes) for e in page]
    _malform(data, call, "datetime")
    return json_response({"data": data, **rest})


def _job(call: Call, path_param: str) -> Any:
    job_id = call.request.path_params[path_param]
    job = call.api.state.jobs.get(job_id)
    if job is None:
        raise KlaviyoError(404, "not_found", f"A profile bulk import job with id '{job_id}' does not exist.")
    return job


def get_job(call: Call) -> Any:
    job = _job(call, "job_id")
    state = call.api.state
    with state.lock:
        resource = job_resource(job, state, call.base, call.query.fieldset("profile-bulk-import-job"))
    payload: dict[str, Any] = {"data": resource, "links": {"self": str(call.request.url)}}
    if "lists" in call.query.includes:
        payload["included"] = []
    return json_response(payload)


def get_jobs(call: Call) -> Any:
    """All of the account's bulk import jobs, filtered on `status`, sorted by `created_at` (then id)."""
    state, query = call.api.state, call.query
    _sort_field, descending = _sort(call, "created_at")
    with state.lock:
        jobs = sorted(state.jobs.values(), key=lambda job: (job.created, job.id))
        page, cursor = _paged(
            call,
            f"jobs|{query.filter_text}|{query.sort}",
            jobs,
            lambda job: (job.created, job.id),
            _keep(query.conditions, {"status": lambda job: job.status}),
            descending=descending,
            size=query.page_size or 20,
        )
        fields = query.fieldset("profile-bulk-import-job")
        data = [job_resource(job, state, call.base, fields) for job in page]
    return json_response({"data": data, "links": _links(call, cursor)})


def get_import_errors(call: Call) -> Any:
    job = _job(call, "id")
    with call.api.state.lock:
        issues = job.sorted_issues() if job.status == "complete" else []
    page, cursor = _paged(
        call,
        f"import-errors|{job.id}",
        issues,
        lambda issue: (issue.index, issue.id),
        lambda issue: True,
        size=call.query.page_size or 20,
    )
    data = [import_error_resource(issue, call.query.fieldset("import-error")) for issue in page]
    return json_response({"data": data, "links": _links(call, cursor)})
