"""Waiting for bulk import jobs: one list call per poll round for every job a push has running.

Polling each job on its own (`GET /api/profile-bulk-import-jobs/{id}`) costs one request per job
and round, so at the documented 150 jobs/min the polls alone would need several times the 150/min
that reading a job is allowed. `get_bulk_import_profiles_jobs` returns up to 100 jobs per request
with the same counts (spec: its own `x-klaviyo-ratelimit`, 10/s and 150/m): a round reads the
newest jobs first and pages back only until every waiting job was seen or the pages are older
than the oldest of them. A job the list did not show (the account's other tools filled the pages,
or a listing lags) is read on its own, so no job waits forever on the list.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.http import HttpClient
from connectors.paginate import dig

BULK_PATH = "/api/profile-bulk-import-jobs"
FINISHED = ("complete", "cancelled")  # the status enum has no `failed` (notes 2.4)
_FIELDS = {"fields[profile-bulk-import-job]": "status,created_at,total_count,completed_count,failed_count"}


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """Job status polling: notes section 2.4 asks for 5-15 s with backoff inside the 150/m budget."""

    initial: float = 5.0
    factor: float = 1.5
    maximum: float = 15.0


def _created(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


class JobWatcher:
    """Resolves each waiting job with its final attributes once its status is complete or cancelled.

    One task polls for all jobs: a round starts `initial` seconds after a job joined, and the wait
    grows by `factor` up to `maximum` while no new job comes.
    """

    def __init__(self, client: HttpClient, poll: PollPolicy) -> None:
        self.client = client
        self.poll = poll
        self._waiting: dict[str, tuple[datetime | None, asyncio.Future[dict[str, Any]]]] = {}
        self._joined = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def wait_for(self, job_id: str, created_at: Any) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[job_id] = (_created(created_at), future)
        self._joined.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            return await future
        finally:
            self._waiting.pop(job_id, None)
            if not self._waiting and self._task is not None:
                self._task.cancel()

    async def _run(self) -> None:
        delay = self.poll.initial
        while self._waiting:
            self._joined.clear()
            await asyncio.sleep(delay)
            try:
                self._settle(await self._round())
            except Exception as exc:  # every waiting push sees the error, none hangs on it
                for _created_at, future in self._waiting.values():
                    if not future.done():
                        future.set_exception(exc)
                return
            joined = self._joined.is_set()
            delay = self.poll.initial if joined else min(self.poll.maximum, delay * self.poll.factor)

    def _settle(self, seen: dict[str, dict[str, Any]]) -> None:
        for job_id, attributes in seen.items():
            entry = self._waiting.get(job_id)
            if entry is not None and attributes.get("status") in FINISHED and not entry[1].done():
                entry[1].set_result(attributes)

    async def _round(self) -> dict[str, dict[str, Any]]:
        """Attributes of every waiting job: from the newest-first list, then one by one for the rest."""
        wanted = set(self._waiting)
        oldest = min((c for c, _f in self._waiting.values() if c is not None), default=None)
        seen: dict[str, dict[str, Any]] = {}
        params: dict[str, str] | None = {"sort": "-created_at", "page[size]": "100", **_FIELDS}
        url = BULK_PATH
        while url and not wanted.issubset(seen):
            response = await self.client.request(
                "GET", url, params=params, limit_key="get_bulk_import_profiles_jobs"
            )
            body = response.json()
            jobs = [j for j in body.get("data") or [] if isinstance(j, dict)]
            seen |= {str(j.get("id")): j.get("attributes") or {} for j in jobs}
            last = _created(dig(jobs[-1], ("attributes", "created_at"))) if jobs else None
            if oldest is not None and last is not None and last < oldest:
                break
            url, params = dig(body, ("links", "next")), None  # the next link carries every parameter
        for job_id in wanted - seen.keys():
            response = await self.client.request(
                "GET", f"{BULK_PATH}/{job_id}", params=_FIELDS, limit_key="get_bulk_import_profiles_job"
            )
            seen[job_id] = dig(response.json(), ("data", "attributes")) or {}
        return seen
