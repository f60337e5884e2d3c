"""Audience members, pulled as one offset listing of a closed `last_changed` window.

Offset paging over a set that changes while it is read loses rows for good (a member written
mid-run leaves the window and every later row shifts left). So the notes' window is fixed at the
start, `[cursor - lookback, T_end]` with `T_end = sync start - settle`, sorted by `last_changed`,
and pages are asked up to the connection cap at once, their offsets known in advance. Instead of
cutting the window into parts that each fit a page (a planning round trip, and parts planned below
a page to be safe), every page boundary is checked (`connectors.paginate.checked_offset_pages`):
once the window ended before the run began it can only shrink, so two pages reporting the same
`total_items` are slices of one snapshot and full pages suffice; otherwise pages overlap by one row
and must meet on it. A boundary that fails (rows left in between) is asked again further back.
Pages are emitted in order, so every page's checkpoint ("everything before this instant is
stored") stays true for a new process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar

from connectors.base import Checkpoint, Page, PullStream, SkippedRecord
from connectors.mailchimp.api import StreamContext, audience_ids, convert, get_json, iso, parse_time
from connectors.paginate import (
    CheckedOffsets,
    OffsetPage,
    any_of,
    checked_offset_pages,
    keys_overlap,
    meeting_on_a_row,
    same_total,
)
from connectors.records import Consent, Profile

SECOND = timedelta(seconds=1)
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
            # The query includes T_end's own second; the saved cursor stops at T_end, and the next
            # run starts a second before it, so a member written later in that second is re-read.
            before = t_end + SECOND
            plan = self._plan(before, sync_started_at, first_pull=cursor is None)
            fetch = partial(self._fetch, list_id, self._params(since, before))
            previous: set[tuple[str, str]] = set()
            async for page in checked_offset_pages(fetch, plan):
                records, skipped, previous = self._parse(list_id, page.items, previous)
                # Every member changed before this page's last one is stored (the chain is proven).
                last = None if plan.ends(page) else _changed(page.items[-1])
                cursors[list_id] = iso(min(last or t_end, t_end))
                yield Page(records, {"lists": dict(cursors)}, skipped)

    def _plan(self, before: datetime, sync_started_at: datetime, *, first_pull: bool) -> CheckedOffsets:
        """Full pages once the window closed before the run began (it can then only shrink), else
        pages overlapping by one row. A first pull fills every connection before the listing's size
        is known; an incremental one asks one page first (it is usually all there is)."""
        size = self.ctx.page_size
        width = self.parallel if first_pull else 1
        if before <= min(datetime.now(UTC), sync_started_at):
            proves = any_of(keys_overlap(_changed), same_total)
            return CheckedOffsets(size, size, proves, self.parallel, width)
        return meeting_on_a_row(size, _changed, _id, self.parallel, width)

    @staticmethod
    def _params(since: datetime | None, before: datetime) -> dict[str, Any]:
        params: dict[str, Any] = {
            "before_last_changed": iso(before),
            "sort_field": "last_changed",
            "sort_dir": "ASC",
            "fields": MEMBER_FIELDS + ",total_items",
        }
        if since is not None:
            params["since_last_changed"] = iso(since)
        return params

    async def _fetch(self, list_id: str, params: dict[str, Any], offset: int) -> OffsetPage:
        path = f"lists/{list_id}/members"
        body = await get_json(self.ctx.client, path, count=self.ctx.page_size, offset=offset, **params)
        items = [i for i in body.get("members") or [] if isinstance(i, dict)]
        total = body.get("total_items")
        return OffsetPage(offset, items, total if isinstance(total, int) else None)

    def _parse(
        self, list_id: str, items: list[dict[str, Any]], previous: set[tuple[str, str]]
    ) -> tuple[list[Profile], list[SkippedRecord], set[tuple[str, str]]]:
        """Records of one page, minus those the previous page already gave (same id and time)."""
        keys = {key for i in items if (key := _pair(i)) is not None}
        fresh = [i for i in items if _pair(i) not in previous]
        records, skipped = convert(self.name, fresh, partial(to_profile, self.ctx.source, list_id), "id")
        return records, skipped, keys


def _changed(item: dict[str, Any]) -> datetime | None:
    return parse_time(item.get("last_changed"))


def _id(item: dict[str, Any]) -> str | None:
    raw = item.get("id")
    return str(raw) if raw else None


def _pair(item: Any) -> tuple[str, str] | None:
    """(id, last_changed) of a member; None for a non-object, which the conversion then skips."""
    return (str(item.get("id")), str(item.get("last_changed"))) if isinstance(item, dict) else None
