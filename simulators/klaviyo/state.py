"""The Klaviyo account held in memory: profiles with identifier indexes, metrics, immutable events in
sorted indexes, bulk import jobs, pending deletions and API keys.

Tests use the public methods to read back what a client wrote (`find_profile(...).properties`) and to
change the account underneath a client (`touch_profile`, `add_event` with an old datetime,
`delete_profile`). Every method takes the lock: uvicorn serves from its own thread while tests mutate
from theirs. Time comes from the injected `clock` (epoch seconds), so rate windows, job phases and
deletion delays can be driven by a fake clock instead of sleeping.
"""

from __future__ import annotations

import threading
from bisect import insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from simulators.harness import Faults, JobClock
from simulators.klaviyo.operations import ALL_SCOPES
from simulators.klaviyo.records import Event, Metric, Profile, base62_id, event_uuid, ulid, utc
from simulators.klaviyo.seed import Seeded

if TYPE_CHECKING:
    from simulators.klaviyo.jobs import BulkJob

IDENTIFIERS = ("email", "phone_number", "external_id")
Clock = Callable[[], float]


def _event_key(event: Event) -> tuple[datetime, str]:
    return event.datetime, event.id


def _suppression_value(profile: Profile, part: str) -> Any:
    suppression = profile.suppression
    if suppression is None:
        return None
    value = suppression.get(part)
    return datetime.fromisoformat(value) if part == "timestamp" and value else value


# Values the profile filters compare against (list suppressions are not modelled: always absent).
PROFILE_FILTER_VALUES: dict[str, Callable[[Profile], Any]] = {
    "id": lambda p: p.id,
    "email": lambda p: p.get("email"),
    "phone_number": lambda p: p.get("phone_number"),
    "external_id": lambda p: p.get("external_id"),
    "_kx": lambda p: p.get("_kx"),
    "created": lambda p: p.created,
    "updated": lambda p: p.updated,
    "subscriptions.email.marketing.suppression.reason": lambda p: _suppression_value(p, "reason"),
    "subscriptions.email.marketing.suppression.timestamp": lambda p: _suppression_value(p, "timestamp"),
    "subscriptions.email.marketing.list_suppressions.reason": lambda p: None,
    "subscriptions.email.marketing.list_suppressions.timestamp": lambda p: None,
    "subscriptions.email.marketing.list_suppressions.list_id": lambda p: None,
}

# Sort keys are (value, id) and never hold None, so bisection and tie-breaking always work.
PROFILE_SORT_KEYS: dict[str, Callable[[Profile], tuple[Any, str]]] = {
    "created": lambda p: (p.created, p.id),
    "updated": lambda p: (p.updated, p.id),
    "id": lambda p: (p.id, p.id),
    "email": lambda p: (p.get("email") or "", p.id),
    "subscriptions.email.marketing.suppression.timestamp": lambda p: (
        (p.suppression or {}).get("timestamp") or "",
        p.id,
    ),
    "subscriptions.email.marketing.list_suppressions.timestamp": lambda p: ("", p.id),
}


@dataclass(frozen=True)
class PendingDeletion:
    due: float
    identifier: str  # "id", "email" or "phone_number"
    value: str


class KlaviyoState:
    def __init__(
        self,
        seeded: Seeded,
        *,
        clock: Clock,
        salt: int,
        job_clock: JobClock,
        deletion_delay: float,
        faults: Faults,
        api_keys: dict[str, frozenset[str]],
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.salt = salt
        self.job_clock = job_clock
        self.deletion_delay = deletion_delay
        self.faults = faults
        self.api_keys = dict(api_keys)
        self.profiles: dict[str, Profile] = {}
        self._index: dict[str, dict[str, str]] = {name: {} for name in IDENTIFIERS}
        for profile in seeded.profiles:
            self._add_profile(profile)
        self.metrics: dict[str, Metric] = {m.id: m for m in seeded.metrics}
        self._events: list[Event] = sorted(seeded.events, key=_event_key)
        self._events_by: dict[str, dict[str, list[Event]]] = {"metric_id": {}, "profile_id": {}}
        for event in self._events:
            self._events_by["metric_id"].setdefault(event.metric_id, []).append(event)
            self._events_by["profile_id"].setdefault(event.profile_id, []).append(event)
        self.jobs: dict[str, BulkJob] = {}
        self.deleted_ids: set[str] = set()
        self._deletions: list[PendingDeletion] = []
        self._version = 0
        self._sorted: dict[str, tuple[int, list[Profile]]] = {}
        self._serial = 0
        self._last_stamp = utc(0)
        self.cancel_next_jobs = 0  # the next N bulk jobs end `cancelled` instead of `complete`

    # ----- clock and ids -------------------------------------------------------------------------

    def now(self) -> datetime:
        """The current time, strictly after the previous stamp so every write gets a distinct `updated`."""
        stamp = max(utc(self.clock()), self._last_stamp + timedelta(microseconds=1))
        self._last_stamp = stamp
        return stamp

    def next_serial(self) -> int:
        self._serial += 1
        return 10**9 + self._serial

    # ----- profiles ------------------------------------------------------------------------------

    def _add_profile(self, profile: Profile) -> None:
        self.profiles[profile.id] = profile
        for name in IDENTIFIERS:
            value = profile.get(name)
            if value:
                self._index[name][value.lower()] = profile.id

    def reindex(self, profile: Profile, before: dict[str, str | None]) -> None:
        """Keep the identifier indexes in step after a write changed `profile`'s identifiers."""
        for name in IDENTIFIERS:
            old, new = before.get(name), profile.get(name)
            if old and self._index[name].get(old.lower()) == profile.id:
                del self._index[name][old.lower()]
            if new:
                self._index[name][new.lower()] = profile.id
        self._version += 1

    def lookup(self, identifier: str, value: str) -> Profile | None:
        with self.lock:
            if identifier == "id":
                return self.profiles.get(value)
            found = self._index[identifier].get(value.lower())
            return self.profiles.get(found) if found else None

    def new_profile(self) -> Profile:
        now = self.now()
        profile = Profile(id=ulid(self.salt, self.next_serial()), created=now, updated=now)
        self.profiles[profile.id] = profile
        self._version += 1
        return profile

    def sorted_profiles(self, sort_field: str) -> list[Profile]:
        """All profiles ascending by (sort value, id); rebuilt only after a write changed something."""
        cached = self._sorted.get(sort_field)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        ordered = sorted(self.profiles.values(), key=PROFILE_SORT_KEYS[sort_field])
        self._sorted[sort_field] = (self._version, ordered)
        return ordered

    def _remove_profile(self, profile_id: str) -> None:
        profile = self.profiles.pop(profile_id, None)
        if profile is None:
            return
        self._version += 1
        for name in IDENTIFIERS:
            value = profile.get(name)
            if value and self._index[name].get(value.lower()) == profile_id:
                del self._index[name][value.lower()]
        self.deleted_ids.add(profile_id)
        self._drop_events_of(profile_id)

    # ----- events --------------------------------------------------------------------------------

    def events_for(self, metric_id: str | None, profile_id: str | None) -> list[Event]:
        """The narrowest sorted event index for an equality filter (all events when there is none)."""
        if metric_id is not None:
            return self._events_by["metric_id"].get(metric_id, [])
        if profile_id is not None:
            return self._events_by["profile_id"].get(profile_id, [])
        return self._events

    def _drop_events_of(self, profile_id: str) -> None:
        gone = self._events_by["profile_id"].pop(profile_id, [])
        if not gone:
            return
        ids = {e.id for e in gone}
        self._events = [e for e in self._events if e.id not in ids]
        for metric_id in {e.metric_id for e in gone}:
            kept = [e for e in self._events_by["metric_id"][metric_id] if e.id not in ids]
            self._events_by["metric_id"][metric_id] = kept

    # ----- background work: jobs and deletions -----------------------------------------------------

    def advance(self) -> None:
        """Apply what has come due: finished bulk jobs and requested deletions. Called on every request."""
        with self.lock:
            now = self.clock()
            for job in self.jobs.values():
                job.advance(self, now)
            due = [d for d in self._deletions if d.due <= now]
            if due:
                self._deletions = [d for d in self._deletions if d.due > now]
                for deletion in due:
                    found = self.lookup(deletion.identifier, deletion.value)
                    if found is not None:
                        self._remove_profile(found.id)

    def request_deletion(self, identifier: str, value: str) -> None:
        with self.lock:
            self._deletions.append(PendingDeletion(self.clock() + self.deletion_delay, identifier, value))

    def add_job(self, job: BulkJob) -> None:
        with self.lock:
            if self.cancel_next_jobs > 0:
                self.cancel_next_jobs -= 1
                job.cancel_when_started = True
            self.jobs[job.id] = job

    # ----- what tests use ------------------------------------------------------------------------

    def find_profile(self, **identifier: str) -> Profile | None:
        """`find_profile(email=...)`, `(external_id=...)`, `(phone_number=...)` or `(id=...)`."""
        self.advance()
        ((name, value),) = identifier.items()
        return self.lookup(name, value)

    def profile_count(self) -> int:
        self.advance()
        return len(self.profiles)

    def touch_profile(self, profile_id: str, **properties: Any) -> Profile:
        """Change a profile as if someone edited it in Klaviyo: merge `properties`, bump `updated`."""
        with self.lock:
            profile = self.profiles[profile_id]
            profile.properties.update(properties)
            profile.updated = self.now()
            self._version += 1
            return profile

    def delete_profile(self, profile_id: str) -> None:
        """Delete a profile at once (as a merge or a UI deletion would): it and its events disappear."""
        with self.lock:
            self._remove_profile(profile_id)

    def metrics_named(self, name: str) -> list[Metric]:
        return [m for m in self.metrics.values() if m.name == name]

    def metric(self, name: str, integration: str) -> Metric:
        (found,) = [m for m in self.metrics_named(name) if m.integration.name == integration]
        return found

    def events_of(self, metric_id: str) -> list[Event]:
        with self.lock:
            return list(self._events_by["metric_id"].get(metric_id, []))

    def add_event(
        self, metric_id: str, profile_id: str, moment: datetime, properties: dict[str, Any] | None = None
    ) -> Event:
        """Insert an event (for example a late one with an old datetime); events cannot be changed later."""
        with self.lock:
            if metric_id not in self.metrics or profile_id not in self.profiles:
                raise KeyError(f"unknown metric {metric_id!r} or profile {profile_id!r}")
            serial = self.next_serial()
            event = Event(
                id=base62_id(self.salt, serial, 11),
                metric_id=metric_id,
                profile_id=profile_id,
                datetime=moment.replace(microsecond=0),
                uuid=event_uuid(self.salt, serial),
                fixed_properties=dict(properties or {}),
            )
            insort(self._events, event, key=_event_key)
            for name, value in (("metric_id", metric_id), ("profile_id", profile_id)):
                insort(self._events_by[name].setdefault(value, []), event, key=_event_key)
            return event

    def add_api_key(self, key: str, scopes: Iterable[str]) -> None:
        """Register a private key with exactly these scopes (to test 403 permission_denied)."""
        scopes = frozenset(scopes)
        unknown = scopes - ALL_SCOPES
        if unknown:
            raise ValueError(f"unknown scopes {sorted(unknown)}")
        with self.lock:
            self.api_keys[key] = scopes

    def cancel_job(self, job_id: str) -> None:
        with self.lock:
            self.jobs[job_id].cancel_when_started = True
