"""JSON:API resource objects as Klaviyo serves them, with sparse fieldsets (`fields[type]=a,b.c`) applied."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from simulators.klaviyo.jobs import JOB_RETENTION_SECONDS, BulkJob, ImportIssue
from simulators.klaviyo.records import LOCATION_KEYS, STRING_ATTRIBUTES, Event, Metric, Profile, iso, utc
from simulators.klaviyo.state import KlaviyoState

# String attributes a profile resource carries (`_kx` can be written and filtered on, never read).
_PROFILE_STRINGS = tuple(name for name in STRING_ATTRIBUTES if name != "_kx")


def project(attributes: dict[str, Any], fields: Collection[str] | None) -> dict[str, Any]:
    """Keep only the requested (possibly dotted) attribute paths; everything when no fieldset was asked."""
    if not fields:
        return attributes
    kept: dict[str, Any] = {}
    for path in fields:
        *parents, leaf = path.split(".")
        source: Any = attributes
        for part in parents:
            source = source.get(part) if isinstance(source, dict) else None
        if not isinstance(source, dict) or leaf not in source:
            continue
        target = kept
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = source[leaf]
    return kept


def _relationship(base: str, kind: str, resource_id: str, name: str, data: Any) -> dict[str, Any]:
    return {
        "data": data,
        "links": {
            "self": f"{base}/api/{kind}/{resource_id}/relationships/{name}/",
            "related": f"{base}/api/{kind}/{resource_id}/{name}/",
        },
    }


# The spec types latitude/longitude as `nullable` + `oneOf[string, number]`, which schema validators
# read as "null is not allowed"; unknown coordinates are therefore left out instead of sent as null.
_COORDINATES = ("latitude", "longitude")


def _location(location: dict[str, Any]) -> dict[str, Any]:
    return {
        key: location.get(key)
        for key in LOCATION_KEYS
        if key not in _COORDINATES or location.get(key) is not None
    }


def profile_attributes(profile: Profile, additional: Collection[str] = ()) -> dict[str, Any]:
    attributes: dict[str, Any] = {name: profile.get(name) for name in _PROFILE_STRINGS}
    attributes.update(
        created=iso(profile.created),
        updated=iso(profile.updated),
        last_event_date=iso(profile.last_event_date),
        location=_location(profile.location),
        properties=dict(profile.properties),
    )
    if "subscriptions" in additional:
        attributes["subscriptions"] = profile.subscriptions
    if "predictive_analytics" in additional:
        attributes["predictive_analytics"] = profile.predictive
    return attributes


def profile_resource(
    profile: Profile,
    base: str,
    fields: Collection[str] | None = None,
    additional: Collection[str] = (),
    includes: Collection[str] = (),
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "type": "profile",
        "id": profile.id,
        "attributes": project(profile_attributes(profile, additional), fields),
        "links": {"self": f"{base}/api/profiles/{profile.id}/"},
    }
    if includes:
        resource["relationships"] = {
            name: _relationship(base, "profiles", profile.id, name, []) for name in sorted(includes)
        }
    return resource


def event_resource(
    event: Event, base: str, fields: Collection[str] | None = None, includes: Collection[str] = ()
) -> dict[str, Any]:
    attributes = {
        "timestamp": event.timestamp,
        "event_properties": event.properties(),
        "datetime": iso(event.datetime),
        "uuid": event.uuid,
    }
    relationships = {
        "profile": _relationship(
            base, "events", event.id, "profile", {"type": "profile", "id": event.profile_id}
        ),
        "metric": _relationship(
            base, "events", event.id, "metric", {"type": "metric", "id": event.metric_id}
        ),
    }
    if "attributions" in includes:
        relationships["attributions"] = _relationship(base, "events", event.id, "attributions", [])
    return {
        "type": "event",
        "id": event.id,
        "attributes": project(attributes, fields),
        "relationships": relationships,
        "links": {"self": f"{base}/api/events/{event.id}/"},
    }


class EventJsonCache:
    """Serialized event resources, built once per (event, host, fieldset, attributions) and reused.

    Events are immutable, so their JSON never goes stale; without this every page rebuilt and
    re-encoded each event (about 160 ms per 1,000-event page). Bounded: cleared when full.
    """

    def __init__(self, max_entries: int = 500_000) -> None:
        self.max_entries = max_entries
        self._texts: dict[tuple[str, str, frozenset[str] | None, bool], str] = {}

    def text(self, event: Event, base: str, fields: frozenset[str] | None, includes: Collection[str]) -> str:
        key = (event.id, base, fields, "attributions" in includes)
        found = self._texts.get(key)
        if found is None:
            if len(self._texts) >= self.max_entries:
                self._texts.clear()
            found = json.dumps(event_resource(event, base, fields, includes), separators=(",", ":"))
            self._texts[key] = found
        return found


def metric_resource(metric: Metric, base: str, fields: Collection[str] | None = None) -> dict[str, Any]:
    attributes = {
        "name": metric.name,
        "created": iso(metric.created),
        "updated": iso(metric.updated),
        "integration": metric.integration.to_json(),
    }
    return {
        "type": "metric",
        "id": metric.id,
        "attributes": project(attributes, fields),
        "links": {"self": f"{base}/api/metrics/{metric.id}/"},
    }


def job_resource(
    job: BulkJob, state: KlaviyoState, base: str, fields: Collection[str] | None = None
) -> dict[str, Any]:
    completed, failed = job.counts(state, state.clock())
    started = job.started_at(state)
    expires = job.completed_at + JOB_RETENTION_SECONDS if job.completed_at is not None else None
    attributes = {
        "status": job.status,
        "created_at": iso(utc(job.created)),
        "total_count": job.total,
        "completed_count": completed,
        "failed_count": failed,
        "completed_at": iso(utc(job.completed_at)) if job.completed_at is not None else None,
        "expires_at": iso(utc(expires)) if expires is not None else None,
        "started_at": iso(utc(started)) if started is not None else None,
    }
    lists = [{"type": "list", "id": list_id} for list_id in job.lists]
    return {
        "type": "profile-bulk-import-job",
        "id": job.id,
        "attributes": project(attributes, fields),
        "relationships": {
            "lists": _relationship(base, "profile-bulk-import-jobs", job.id, "lists", lists),
            "import-errors": {
                "links": {"related": f"{base}/api/profile-bulk-import-jobs/{job.id}/import-errors/"}
            },
        },
        "links": {"self": f"{base}/api/profile-bulk-import-jobs/{job.id}/"},
    }


def import_error_resource(issue: ImportIssue, fields: Collection[str] | None = None) -> dict[str, Any]:
    attributes = {
        "code": issue.code,
        "title": issue.title,
        "detail": issue.detail,
        "source": {"pointer": issue.pointer},
        "original_payload": issue.original_payload,
    }
    return {"type": "import-error", "id": issue.id, "attributes": project(attributes, fields)}
