"""Bulk profile import jobs: `queued` → `processing` → `complete` (or `cancelled` when a test injects it).

Phases follow the injected clock through `JobClock`. Values the API refuses (bad email or phone, records
named by `Faults.reject_records`) are known at POST; identifier conflicts are found when the job applies.
Both become `import-error` resources carrying the entry's attributes as `original_payload`, while the good
profiles of the same job are applied. `completed_count` and `failed_count` grow during processing and add
up to `total_count` once complete.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from simulators.klaviyo.errors import KlaviyoError
from simulators.klaviyo.state import KlaviyoState
from simulators.klaviyo.writes import ProfileWrite, upsert

JOB_RETENTION_SECONDS = 30 * 24 * 3600  # how long a finished job stays readable (expires_at)


@dataclass(frozen=True)
class ImportIssue:
    id: str
    index: int
    code: str
    title: str
    detail: str
    pointer: str
    original_payload: dict[str, Any]


def import_issue(
    index: int, write: ProfileWrite, code: str, detail: str, attribute: str | None
) -> ImportIssue:
    pointer = f"/data/attributes/profiles/data/{index}/attributes"
    return ImportIssue(
        id=str(uuid.uuid4()),
        index=index,
        code=code,
        title="Invalid input" if code == "invalid" else "Import failed",
        detail=detail,
        pointer=f"{pointer}/{attribute}" if attribute else pointer,
        original_payload=write.attributes,
    )


@dataclass
class BulkJob:
    id: str
    created: float  # clock seconds
    writes: list[ProfileWrite]
    issues: dict[int, ImportIssue]
    lists: list[str] = field(default_factory=list)
    cancel_when_started: bool = False
    status: str = "queued"
    completed_at: float | None = None
    profile_ids: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.writes)

    def started_at(self, state: KlaviyoState) -> float | None:
        return None if self.status == "queued" else self.created + state.job_clock.queued_seconds

    def advance(self, state: KlaviyoState, now: float) -> None:
        if self.status in ("complete", "cancelled"):
            return
        phase = state.job_clock.phase(self.created, now)
        if phase == "queued":
            return
        if self.cancel_when_started:
            self.status, self.completed_at = "cancelled", now
        elif phase == "processing":
            self.status = "processing"
        else:
            self._apply(state)
            self.status, self.completed_at = "complete", now

    def _apply(self, state: KlaviyoState) -> None:
        for index, write in enumerate(self.writes):
            if index in self.issues:
                continue
            try:
                profile, _ = upsert(state, write)
            except KlaviyoError as error:
                self.issues[index] = import_issue(index, write, error.code, error.detail, None)
            else:
                self.profile_ids.append(profile.id)

    def counts(self, state: KlaviyoState, now: float) -> tuple[int, int]:
        """(completed_count, failed_count) as a poller sees them now."""
        if self.status == "complete":
            return self.total - len(self.issues), len(self.issues)
        if self.status != "processing":
            return 0, 0
        elapsed = now - self.created - state.job_clock.queued_seconds
        done = min(self.total, int(self.total * elapsed / max(state.job_clock.processing_seconds, 1e-9)))
        failed = sum(1 for index in self.issues if index < done)
        return done - failed, failed

    def sorted_issues(self) -> list[ImportIssue]:
        return sorted(self.issues.values(), key=lambda issue: issue.index)
