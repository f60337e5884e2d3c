"""Audience members, pulled in closed `last_changed` windows that each fit one page.

Offset paging over a set that changes while it is read loses rows for good (a member written
mid-run jumps to the end and every later row shifts left). So the notes' safe recipe: fix
`T_end = sync start - settle` at the start, and cut `[cursor - lookback, T_end)` into windows
until each holds at most one page; one request at offset 0 is then a consistent snapshot of its
window. Windows are fetched concurrently (up to the connection cap) but emitted in time order, so
every page's checkpoint ("everything before this instant is stored") stays true for a new process.
A single second holding more than a page is read with an overlapping offset stride.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar

from connectors.base import Checkpoint, Page, PullStream, SkippedRecord
from connectors.mailchimp.api import (
    StreamContext,
    audience_ids,
    convert,
    get_json,
    iso,
    offset_pages,
    parse_time,
)
from connectors.records import Consent, Profile

SECOND = timedelta(seconds=1)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # before Mailchimp existed: the lower bound of a first pull
FILL = 0.9  # target share of a page per split window, so most windows fit on the first try
MAX_FILL = 0.93  # the fullest a window is planned when that saves a round (~2 sigma below a page)
LOOKAHEAD = 4  # windows fetched ahead of the one to emit, per connection
MAX_PARTS = 4096  # cheap: parts are only queued, at most `parallel` are in flight
MEMBER_FIELDS = ",".join(
    f"members.{f}"
    for f in (
        "id",
        "email_address",
        "status",
        "merge_fields",
        "stats",
        "member_rating",
        "timestamp_signup",
        "last_changed",
        "location.country_code",
        "location.timezone",
    )
)
CONSENT = {
    "subscribed": Consent.SUBSCRIBED,
    "unsubscribed": Consent.UNSUBSCRIBED,
    "cleaned": Consent.UNSUBSCRIBED,  # the address bounced for good: it cannot be mailed
    "pending": Consent.NEVER_SUBSCRIBED,  # double opt-in not confirmed yet
    "transactional": Consent.NEVER_SUBSCRIBED,
}


@dataclass(frozen=True, slots=True)
class Window:
    """Members with `since < last_changed < before` (both bounds exclusive on the wire)."""

    since: datetime | None
    before: datetime

    @property
    def low(self) -> datetime:
        return self.since or EPOCH


def member_vendor_id(list_id: str, subscriber_hash: str) -> str:
    """One audience membership: the same person in two audiences is two vendor records."""
    return f"{list_id}:{subscriber_hash}"


def to_profile(source: str, list_id: str, item: dict[str, Any]) -> Profile:
    location = item.get("location") or {}
    stats = item.get("stats") or {}
    properties = dict(item.get("merge_fields") or {})
    properties.update(
        avg_open_rate=stats.get("avg_open_rate"),
        avg_click_rate=stats.get("avg_click_rate"),
        member_rating=item.get("member_rating"),
    )
    return Profile(
        source=source,
        vendor_id=member_vendor_id(list_id, str(item.get("id") or "")),
        email=item.get("email_address"),
        country=location.get("country_code") or None,
        timezone=location.get("timezone") or None,
        created_at=parse_time(item.get("timestamp_signup")),
        updated_at=item.get("last_changed"),
        consent=CONSENT.get(str(item.get("status")), Consent.UNKNOWN),
        properties=properties,
        raw=item,
    )


def parts_for(rows: int, page_size: int, parallel: int) -> int:
    """How many windows to cut `rows` into: about FILL of a page each, unless one round fewer of
    `parallel` requests holds them at no more than MAX_FILL (rounds of round trips, not requests,
    set the pull's time: 9,100 rows on 10 connections take one round of 10 parts, not two of 11)."""
    parts = math.ceil(rows / (page_size * FILL))
    fewer = (math.ceil(parts / parallel) - 1) * parallel
    if fewer and rows <= fewer * page_size * MAX_FILL:
        parts = fewer
    return min(MAX_PARTS, max(2, parts))


def split(
    window: Window, items: Sequence[dict[str, Any]], total: int, page_size: int, parallel: int = 1
) -> list[Window]:
    """Cut an overfull window into parts expected to fit a page each (whole seconds, in order).

    The first page (sorted by last_changed) tells where a page's worth of rows ends, which puts the
    first cut where the data is; the rest is cut evenly. Correctness never relies on the sort: each
    part is fetched again and split again if it still does not fit.
    """
    low, high = window.low, window.before
    points: list[datetime] = []
    times = [parse_time(i.get("last_changed")) for i in items]
    known = [t for t in times if t is not None]
    target = int(page_size * FILL)
    if len(known) == len(times) and known == sorted(known) and len(known) > target:
        points.append(known[target].replace(microsecond=0))
    start = max([low, *points])
    parts = parts_for(max(total - target, 1), page_size, parallel)
    step = (high - start) / parts
    points += [(start + step * i).replace(microsecond=0) for i in range(1, parts)]
    # A cut c makes (since, c) and (c - 1 s, before): both must be narrower than the window.
    inner = sorted({p for p in points if low + 2 * SECOND <= p <= high - SECOND}) or [low + 2 * SECOND]
    windows = [Window(window.since, inner[0])]
    windows += [Window(a - SECOND, b) for a, b in itertools.pairwise([*inner, high])]
    return windows


def answered_head(first: Window, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The first part of a split window, read from the answer that overflowed, or None.

    That answer is the window's first page sorted by `last_changed`: when it reaches past the part's
    upper bound, every member changed before that bound is on it, so the part needs no request of
    its own (one round trip and one page saved per split).
    """
    times = [parse_time(i.get("last_changed")) for i in items]
    known = [t for t in times if t is not None]
    if not known or len(known) < len(times) or known != sorted(known) or known[-1] < first.before:
        return None
    return [item for item, moment in zip(items, known, strict=True) if moment < first.before]


class MembersStream(PullStream):
    name: ClassVar[str] = "members"

    def __init__(self, ctx: StreamContext, parallel: int) -> None:
        self.ctx = ctx
        self.parallel = parallel

    async def read(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> AsyncIterator[Page]:
        t_end = self.ctx.t_end(sync_started_at)
        cursors: dict[str, str] = dict((checkpoint or {}).get("lists") or {})
        for list_id in await audience_ids(self.ctx.client, self.ctx.list_id):
            cursor = parse_time(cursors.get(list_id))
            since = cursor - self.ctx.lookback - SECOND if cursor else None
            if since is not None and since >= t_end:
                continue
            emitted = False
            # The query includes T_end's own second; the saved cursor stops at T_end, and the next
            # run starts a second before it, so a member written later in that second is re-read.
            async for window, records, skipped in self._windows(list_id, Window(since, t_end + SECOND)):
                cursors[list_id] = iso(min(window.before, t_end))
                emitted = True
                yield Page(records, {"lists": dict(cursors)}, skipped)
            if not emitted:
                cursors[list_id] = iso(t_end)
                yield Page([], {"lists": dict(cursors)})

    @staticmethod
    def _params(window: Window) -> dict[str, Any]:
        params: dict[str, Any] = {
            "before_last_changed": iso(window.before),
            "sort_field": "last_changed",
            "sort_dir": "ASC",
            "fields": MEMBER_FIELDS + ",total_items",
        }
        if window.since is not None:
            params["since_last_changed"] = iso(window.since)
        return params

    async def _fetch(self, list_id: str, window: Window) -> tuple[list[dict[str, Any]], int]:
        path = f"lists/{list_id}/members"
        body = await get_json(
            self.ctx.client, path, count=self.ctx.page_size, offset=0, **self._params(window)
        )
        items = [i for i in body.get("members") or [] if isinstance(i, dict)]
        return items, int(body.get("total_items") or 0)

    async def _one_second(self, list_id: str, window: Window) -> list[dict[str, Any]]:
        """More than a page changed within one second: offset paging with an overlapping stride."""
        found: dict[str, dict[str, Any]] = {}
        path = f"lists/{list_id}/members"
        async for items, _next in offset_pages(self.ctx, path, "members", self._params(window)):
            found.update({str(i.get("id")): i for i in items})
        return list(found.values())

    async def _windows(
        self, list_id: str, whole: Window
    ) -> AsyncIterator[tuple[Window, list[Profile], list[SkippedRecord]]]:
        """Leaf windows in time order with their parsed records."""
        previous: set[tuple[str, str]] = set()
        async for window, items in self._leaves(list_id, whole):
            records, skipped, previous = self._parse(list_id, items, previous)
            yield window, records, skipped

    async def _leaves(
        self, list_id: str, whole: Window
    ) -> AsyncIterator[tuple[Window, list[dict[str, Any]]]]:
        """Raw items of each window that fits a page, in time order.

        Up to `parallel` fetches run at once over the next few windows; a window that overflows is
        split where it stands as soon as its answer arrives, so its parts start at once too.
        """
        queue: list[Window] = [whole]  # time order; the head is the next to emit
        done: dict[Window, tuple[list[dict[str, Any]], int]] = {}
        running: dict[asyncio.Task[tuple[list[dict[str, Any]], int]], Window] = {}
        try:
            while queue:
                while queue and queue[0] in done:
                    head = queue.pop(0)
                    items, total = done.pop(head)
                    if total > self.ctx.page_size:  # one second holds more than a page
                        items = await self._one_second(list_id, head)
                    yield head, items
                if not queue:
                    return
                self._start(list_id, queue, done, running)
                finished, _pending = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    window = running.pop(task)
                    items, total = task.result()
                    if total > self.ctx.page_size and window.before - window.low > 2 * SECOND:
                        at = queue.index(window)
                        parts = split(window, items, total, self.ctx.page_size, self.parallel)
                        queue[at : at + 1] = parts
                        if (head := answered_head(parts[0], items)) is not None:
                            done[parts[0]] = (head, len(head))
                    else:
                        done[window] = (items, total)
        finally:
            for task in running:
                task.cancel()

    def _start(
        self,
        list_id: str,
        queue: list[Window],
        done: dict[Window, Any],
        running: dict[asyncio.Task[tuple[list[dict[str, Any]], int]], Window],
    ) -> None:
        """Fill the free connections with the earliest windows not fetched yet (bounded lookahead)."""
        busy = set(running.values())
        for window in queue[: self.parallel * LOOKAHEAD]:
            if len(running) >= self.parallel:
                return
            if window not in done and window not in busy:
                running[asyncio.create_task(self._fetch(list_id, window))] = window

    def _parse(
        self, list_id: str, items: list[dict[str, Any]], previous: set[tuple[str, str]]
    ) -> tuple[list[Profile], list[SkippedRecord], set[tuple[str, str]]]:
        """Records of one window, minus those the previous window already gave (same id and time)."""
        keys = {key for i in items if (key := _pair(i)) is not None}
        fresh = [i for i in items if _pair(i) not in previous]
        records, skipped = convert(self.name, fresh, partial(to_profile, self.ctx.source, list_id), "id")
        return records, skipped, keys


def _pair(item: Any) -> tuple[str, str] | None:
    """(id, last_changed) of a member; None for a non-object, which the conversion then skips."""
    return (str(item.get("id")), str(item.get("last_changed"))) if isinstance(item, dict) else None
