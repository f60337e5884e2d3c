"""The notes' safe incremental recipe for Brevo's `modifiedSince` listings (contacts, orders).

Brevo's listings have a lower bound only and order by CREATION, with no snapshot isolation. So:
1. `T_start = min(now, sync start) - settle` is fixed when a run begins; the query is
   `modifiedSince = W - lookback`, `sort=asc` (new rows append at the end).
2. Rows never move in creation order; they only enter (modified during the run: they have
   `modifiedAt > T_start` and come back next run) or leave (deleted). Only a deletion before a page
   shifts it left and could skip a row. The notes' stride with a 100-row overlap re-read 10 % of
   every page against that; here pages overlap by one row instead and must meet on it (or overlap
   in `createdAt`), which proves nothing was skipped; a page that does not is asked again further
   back (`connectors.paginate.checked_offset_pages`). Rows given twice are dropped by the
   (id, modifiedAt) dedupe.
3. The page that reaches the end writes the bookmark `W = T_start` (never max(modifiedAt): offsets
   and clock skew). Anything modified after `T_start` is read again next run.
Intermediate pages checkpoint the run itself (query bound, `T_start`, next offset and the row the
next page must start with), so a new process resumes at the next page with the same window, checks
it the same way, and writes the same final bookmark.

Pages are fetched `parallel` at a time (their offsets are known in advance), but yielded in order,
so every checkpoint stays true.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from pydantic import ValidationError

from connectors.base import Checkpoint, Page, PulledRecord, PullStream, SkippedRecord
from connectors.brevo.api import get_json, parse_time, wire_time
from connectors.http import HttpClient
from connectors.paginate import OffsetPage, checked_offset_pages, meeting_on_a_row


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
    last: dict[str, Any] | None = None  # id and createdAt of the row the page at `offset` repeats

    def checkpoint(self, offset: int, last: Any) -> Checkpoint:
        since = wire_time(self.since) if self.since else None
        mark = {k: last.get(k) for k in ("id", "createdAt")} if isinstance(last, dict) else None
        return {"run": {"since": since, "t_start": wire_time(self.t_start), "offset": offset, "last": mark}}


def _resume(checkpoint: Checkpoint | None) -> Run | None:
    run = (checkpoint or {}).get("run")
    if not isinstance(run, dict):
        return None
    since = run.get("since")
    last = run.get("last") if isinstance(run.get("last"), dict) else None
    return Run(parse_time(since) if since else None, parse_time(run["t_start"]), int(run["offset"]), last)


def _created(item: Any) -> datetime | None:
    raw = item.get("createdAt") if isinstance(item, dict) else None
    try:
        return parse_time(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def _identity(item: Any) -> Any:
    return item.get("id") if isinstance(item, dict) else None


class ModifiedSinceStream(PullStream, abc.ABC):
    """A Brevo offset listing read with the safe recipe; subclasses map one vendor record."""

    path: str
    items_key: str
    family: str

    def __init__(self, ctx: StreamContext, *, limit: int, parallel: int) -> None:
        self.ctx = ctx
        self.limit = limit
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
        params: dict[str, Any] = {"sort": "asc", "limit": self.limit}
        if run.since is not None:
            params["modifiedSince"] = wire_time(run.since)
        # The first page goes alone: an incremental run is usually one short page, and a 429 on it
        # pauses the run before the others are sent (Brevo gives no concurrency cap to fill).
        plan = meeting_on_a_row(self.limit, _created, _identity, self.parallel)
        previous = OffsetPage(run.offset, [run.last], None) if run.last else None
        seen: set[tuple[Any, Any]] = set()
        pages = checked_offset_pages(partial(self._get, params), plan, start=run.offset, previous=previous)
        async for page in pages:
            if plan.ends(page):
                yield self._page(page.items, seen, {"watermark": wire_time(run.t_start)})
            else:
                checkpoint = run.checkpoint(page.offset + plan.stride, page.items[-1])
                yield self._page(page.items, seen, checkpoint)

    async def _get(self, params: dict[str, Any], offset: int) -> OffsetPage:
        body = await get_json(self.ctx.client, self.path, family=self.family, **params, offset=offset)
        items = body.get(self.items_key) or []
        count = body.get("count")
        return OffsetPage(offset, items, count if isinstance(count, int) else None)

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


def _reason(exc: Exception) -> str:
    """A skip reason without the offending value (it may be an email address)."""
    if isinstance(exc, ValidationError):
        return "invalid " + ", ".join(
            sorted({".".join(map(str, e["loc"])) or "record" for e in exc.errors()})
        )
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]}"
    return type(exc).__name__ + (": " + str(exc).split(":")[0] if str(exc) else "")
