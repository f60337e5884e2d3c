"""The notes' safe incremental recipe for Brevo's `modifiedSince` listings (contacts, orders).

Brevo's listings have a lower bound only and order by CREATION, with no snapshot isolation. So:
1. `T_start = min(now, sync start) - settle` is fixed when a run begins; the query is
   `modifiedSince = W - lookback`, `sort=asc` (new rows append at the end).
2. Offsets advance by `limit - overlap`: up to `overlap` deletions during the run shift rows left
   without loss; rows re-read in the overlap are dropped by the (id, modifiedAt) dedupe.
3. A short page ends the run; the bookmark `W = T_start` (never max(modifiedAt): offsets and clock
   skew) is written with that last page. Anything modified after `T_start` is read again next run.
Intermediate pages checkpoint the run itself (query bound, `T_start`, next offset), so a new
process resumes at the next page with the same window and writes the same final bookmark.

Pages after the first are fetched `parallel` at a time (their offsets are known in advance), but
yielded in order, so every checkpoint stays true.
"""

from __future__ import annotations

import abc
import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from connectors.base import Checkpoint, Page, PulledRecord, PullStream, SkippedRecord
from connectors.brevo.api import parse_time, wire_time
from connectors.http import HttpClient
from connectors.paginate import OffsetPaginator, PageRequest


@dataclass(frozen=True, slots=True)
class StreamContext:
    client: HttpClient
    source: str
    lookback: timedelta
    settle: timedelta
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Run:
    """One pass over a window: what an intermediate checkpoint must carry to resume it."""

    since: datetime | None  # the modifiedSince sent (None: a full pull)
    t_start: datetime
    offset: int = 0

    def checkpoint(self, offset: int) -> Checkpoint:
        since = wire_time(self.since) if self.since else None
        return {"run": {"since": since, "t_start": wire_time(self.t_start), "offset": offset}}


def _resume(checkpoint: Checkpoint | None) -> Run | None:
    run = (checkpoint or {}).get("run")
    if not isinstance(run, dict):
        return None
    since = run.get("since")
    return Run(parse_time(since) if since else None, parse_time(run["t_start"]), int(run["offset"]))


class ModifiedSinceStream(PullStream, abc.ABC):
    """A Brevo offset listing read with the safe recipe; subclasses map one vendor record."""

    path: str
    items_key: str
    family: str

    def __init__(self, ctx: StreamContext, *, limit: int, overlap: int, parallel: int) -> None:
        self.ctx = ctx
        self.paginator = OffsetPaginator(
            limit=limit, limit_param="limit", stride=limit - overlap, total_path=("count",)
        )
        self.parallel = max(1, parallel)

    @abc.abstractmethod
    def convert(self, item: dict[str, Any]) -> PulledRecord:
        """One vendor record as a canonical one; raise ValueError/ValidationError to skip it."""

    @staticmethod
    @abc.abstractmethod
    def vendor_id(item: Any) -> str | None: ...

    def _new_run(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> Run:
        t_start = min(self.ctx.now(), sync_started_at) - self.ctx.settle
        watermark = (checkpoint or {}).get("watermark")
        since = parse_time(watermark) - self.ctx.lookback if watermark else None
        return Run(since, t_start)

    async def read(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> AsyncIterator[Page]:
        run = _resume(checkpoint) or self._new_run(checkpoint, sync_started_at)
        params: dict[str, Any] = {"sort": "asc"}
        if run.since is not None:
            params["modifiedSince"] = wire_time(run.since)
        request: PageRequest | None = self.paginator.first(PageRequest(self.path, params), run.offset)
        seen: set[tuple[Any, Any]] = set()
        ahead: deque[tuple[PageRequest, asyncio.Task[Any]]] = deque()
        total: int | None = None
        try:
            while request is not None:
                self._fill(ahead, request, total)
                current, task = ahead.popleft()
                body = await task
                items = body.get(self.items_key) or []
                total = body.get("count") if isinstance(body.get("count"), int) else None
                request = self.paginator.next_request(current, body, len(items))
                if request is None:
                    yield self._page(items, seen, {"watermark": wire_time(run.t_start)})
                else:
                    yield self._page(items, seen, run.checkpoint(int(request.params["offset"])))
                    if not (ahead and ahead[0][0] == request):
                        _cancel(ahead)
        finally:
            _cancel(ahead)

    def _fill(
        self, ahead: deque[tuple[PageRequest, asyncio.Task[Any]]], request: PageRequest, total: int | None
    ) -> None:
        """Keep up to `parallel` page requests in flight once the listing's size is known.

        The first page goes alone (an incremental run is usually one short page); later offsets
        assume full pages, which holds until the last one, and are capped by the reported count.
        """
        if not ahead:
            ahead.append((request, asyncio.ensure_future(self._get(request))))
        width = self.parallel if total is not None else 1
        while len(ahead) < width:
            guess = self.paginator.next_request(ahead[-1][0], {"count": total}, self.paginator.limit)
            if guess is None:
                break
            ahead.append((guess, asyncio.ensure_future(self._get(guess))))

    async def _get(self, request: PageRequest) -> Any:
        response = await self.ctx.client.request(
            "GET", request.url, params=request.params, limit_key=self.family
        )
        return response.json()

    def _page(self, items: list[Any], seen: set[tuple[Any, Any]], checkpoint: Checkpoint) -> Page:
        records: list[PulledRecord] = []
        skipped: list[SkippedRecord] = []
        for item in items:
            key = _dedupe_key(item)
            if key is not None and key in seen:
                continue
            try:
                if not isinstance(item, dict):
                    raise ValueError("not an object")
                records.append(self.convert(item))
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError, ValidationError) as exc:
                skipped.append(SkippedRecord(self.name, self.vendor_id(item), _reason(exc)))
                continue
            if key is not None:
                seen.add(key)
        return Page(records, checkpoint, skipped)


def _dedupe_key(item: Any) -> tuple[Any, Any] | None:
    """(id, modified time) of a record, or None when it has no usable (hashable, scalar) id."""
    if not isinstance(item, dict):
        return None
    key = (item.get("id"), item.get("modifiedAt", item.get("updatedAt")))
    scalar = all(isinstance(part, str | int | float | None) for part in key)
    return key if scalar and key[0] is not None else None


def _cancel(ahead: deque[tuple[PageRequest, asyncio.Task[Any]]]) -> None:
    """Drop prefetched pages that will not be used (the listing ended early or shifted)."""
    for _, task in ahead:
        task.cancel()
    ahead.clear()


def _reason(exc: Exception) -> str:
    """A skip reason without the offending value (it may be an email address)."""
    if isinstance(exc, ValidationError):
        return "invalid " + ", ".join(
            sorted({".".join(map(str, e["loc"])) or "record" for e in exc.errors()})
        )
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]}"
    return type(exc).__name__ + (": " + str(exc).split(":")[0] if str(exc) else "")
