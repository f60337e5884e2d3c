"""Campaign email activity: opens, clicks and bounces per recipient, plus who received each send.

Opens and clicks never bump a member's `last_changed`, so they come only from the reports. Opens
keep arriving for weeks, so every run revisits the campaigns sent in the last `activity_days` days
and asks each for `email-activity?since=<its watermark - lookback>`. The first read of a campaign has
no `since`: that listing holds every recipient, so it also yields one `received` event each at the
send time, for free. The listing grows while it is paged, so pages overlap (a shifted row is read
twice, never skipped) and events are identified by (campaign, member, action, time, url).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any, ClassVar

from connectors.base import Checkpoint, Page, PullStream
from connectors.mailchimp.api import StreamContext, collect, convert, iso, offset_pages, parse_time
from connectors.mailchimp.members import member_vendor_id
from connectors.records import EngagementEvent, EventKind

KINDS = {"open": EventKind.OPENED, "click": EventKind.CLICKED, "bounce": EventKind.BOUNCED}
EMAIL_FIELDS = "emails.email_id,emails.email_address,emails.list_id,emails.activity,total_items"


def event_id(campaign_id: str, email_id: str, action: str, timestamp: str, url: str | None) -> str:
    """The dedupe key of the notes, hashed to a short stable id (same event -> same row)."""
    key = "|".join((campaign_id, email_id, action, timestamp, url or ""))
    return hashlib.sha1(key.encode()).hexdigest()[:32]


def _event(
    source: str,
    campaign_id: str,
    entry: dict[str, Any],
    kind: EventKind,
    at: Any,
    url: str | None,
    action: str,
) -> EngagementEvent:
    email_id = str(entry.get("email_id") or "")
    return EngagementEvent(
        source=source,
        vendor_id=event_id(campaign_id, email_id, action, str(at), url),
        customer_vendor_id=member_vendor_id(str(entry.get("list_id") or ""), email_id),
        email=entry.get("email_address"),
        kind=kind,
        occurred_at=at,
        campaign_id=campaign_id,
        url=url,
        raw={k: v for k, v in entry.items() if k != "activity"} | {"action": action},
    )


def entry_events(
    source: str, campaign: dict[str, Any], entry: dict[str, Any], with_received: bool
) -> list[EngagementEvent]:
    """The canonical events of one recipient entry (raises ValidationError on a malformed one)."""
    campaign_id = str(campaign["id"])
    events = []
    if with_received:
        sent = campaign.get("send_time")
        events.append(_event(source, campaign_id, entry, EventKind.RECEIVED, sent, None, "sent"))
    for act in entry.get("activity") or []:
        kind = KINDS.get(str(act.get("action"))) if isinstance(act, dict) else None
        if kind is not None:
            url = act.get("url") or None
            events.append(_event(source, campaign_id, entry, kind, act.get("timestamp"), url, act["action"]))
    return events


class EmailActivityStream(PullStream):
    name: ClassVar[str] = "email_activity"

    def __init__(self, ctx: StreamContext, days: int) -> None:
        self.ctx = ctx
        self.days = days

    async def read(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> AsyncIterator[Page]:
        t_end = self.ctx.t_end(sync_started_at)
        campaigns = await self._campaigns(t_end)
        state = checkpoint or {}
        marks = {
            c["id"]: state["campaigns"][c["id"]] for c in campaigns if c["id"] in state.get("campaigns", {})
        }
        current = state.get("current") or {}
        for campaign in campaigns:
            cid = campaign["id"]
            if current.get("id") == cid:
                since, offset = current.get("since"), int(current.get("offset") or 0)
            elif cid in marks:
                since, offset = self._since(marks[cid]), 0
            else:
                since, offset = None, 0
            params = {"fields": EMAIL_FIELDS} | ({"since": since} if since else {})
            path = f"reports/{cid}/email-activity"
            previous: set[str] = set()  # overlapping pages repeat rows: emit each event once
            async for items, next_offset in offset_pages(self.ctx, path, "emails", params, offset):
                events, skipped = convert(
                    self.name,
                    items,
                    partial(entry_events, self.ctx.source, campaign, with_received=since is None),
                    "email_id",
                )
                records = list({e.vendor_id: e for e in events if e.vendor_id not in previous}.values())
                previous = {e.vendor_id for e in events}
                if next_offset is None:
                    marks[cid] = iso(t_end)
                    position = None
                else:
                    position = {"id": cid, "since": since, "offset": next_offset}
                yield Page(records, {"campaigns": dict(marks), "current": position}, skipped)

    def _since(self, mark: str) -> str | None:
        moment = parse_time(mark)
        return iso(moment - self.ctx.lookback) if moment else None

    async def _campaigns(self, t_end: datetime) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "status": "sent",
            "since_send_time": iso(t_end - timedelta(days=self.days)),
            "sort_field": "send_time",
            "sort_dir": "ASC",
            "fields": "campaigns.id,campaigns.send_time,campaigns.recipients.list_id,total_items",
        }
        if self.ctx.list_id:
            params["list_id"] = self.ctx.list_id
        found = await collect(self.ctx.client, "campaigns", "campaigns", **params)
        return [c for c in found if c.get("id")]
