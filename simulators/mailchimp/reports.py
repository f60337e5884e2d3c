"""Sent campaigns and their engagement: `/campaigns`, `/reports/{id}/email-activity` and the per-member
activity feed. Opens and clicks live here only: they never touch a member's `last_changed`, so a
client that expects engagement from the member listing misses it, as on the real API."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from simulators.mailchimp.context import context, list_audience
from simulators.mailchimp.errors import not_found
from simulators.mailchimp.query import (
    PAGING,
    PROJECTION,
    bool_param,
    checked_query,
    enum_param,
    in_window,
    iso,
    optional_time,
    page_of,
    project,
)

FEED_KINDS = {
    "received": "sent",
    "opened": "open",
    "clicked": "click",
    "bounced": "bounce",
    "unsubscribed": "unsub",
}
REPORT_ACTIONS = ("open", "click", "bounce")
CAMPAIGN_PARAMS = PAGING | {
    "type",
    "status",
    "before_send_time",
    "since_send_time",
    "before_create_time",
    "since_create_time",
    "list_id",
    "folder_id",
    "member_id",
    "sort_field",
    "sort_dir",
    "include_resend_shortcut_eligibility",
}


@dataclass(frozen=True, slots=True)
class Activity:
    action: str  # feed kind: sent, open, click, bounce, unsub
    at: datetime
    url: str | None = None

    def report_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"action": self.action, "timestamp": iso(self.at), "ip": "198.51.100.7"}
        if self.url:
            item["url"] = self.url
        if self.action == "bounce":
            item["type"] = "hard"
        return item


@dataclass
class SentCampaign:
    id: str
    web_id: int
    title: str
    send_time: datetime
    create_time: datetime
    recipients: list[str] = field(default_factory=list)  # member ids in send order
    activity: dict[str, list[Activity]] = field(default_factory=lambda: defaultdict(list))

    def to_json(self, list_id: str, list_name: str) -> dict[str, Any]:
        archive = f"https://mailchi.mp/example/{self.id}"
        return {
            "id": self.id,
            "web_id": self.web_id,
            "type": "regular",
            "create_time": iso(self.create_time),
            "archive_url": archive,
            "long_archive_url": archive,
            "status": "sent",
            "emails_sent": len(self.recipients),
            "send_time": iso(self.send_time),
            "content_type": "template",
            "needs_block_refresh": False,
            "resendable": False,
            "recipients": {
                "list_id": list_id,
                "list_is_active": True,
                "list_name": list_name,
                "segment_text": "",
                "recipient_count": len(self.recipients),
            },
            "settings": {
                "subject_line": self.title,
                "title": self.title,
                "from_name": "Shop",
                "reply_to": "",
            },
            "_links": [],
        }


@dataclass
class Reports:
    """Campaigns by id plus every member's activity feed (newest first when served)."""

    campaigns: dict[str, SentCampaign] = field(default_factory=dict)
    feeds: dict[str, list[tuple[str, Activity]]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add_campaign(self, campaign: SentCampaign) -> None:
        with self.lock:
            self.campaigns[campaign.id] = campaign

    def add_event(
        self, campaign_id: str, member_id: str, kind: str, at: datetime, url: str | None = None
    ) -> None:
        """Record one email event (shop kinds: received, opened, clicked, bounced, unsubscribed)."""
        activity = Activity(FEED_KINDS[kind], at.replace(microsecond=0), url)
        with self.lock:
            campaign = self.campaigns[campaign_id]
            if activity.action == "sent":
                campaign.recipients.append(member_id)
            elif activity.action in REPORT_ACTIONS:
                campaign.activity[member_id].append(activity)
            self.feeds[member_id].append((campaign_id, activity))

    def sorted_campaigns(self, field_name: str) -> list[SentCampaign]:
        with self.lock:
            return sorted(self.campaigns.values(), key=lambda c: (getattr(c, field_name), c.id))


async def list_campaigns(request: Request) -> Response:
    state = context(request)
    query = checked_query(request, CAMPAIGN_PARAMS)
    page = page_of(query)
    enum_param(query, "type", ("regular", "plaintext", "absplit", "rss", "variate"))
    status = enum_param(query, "status", ("save", "paused", "schedule", "sending", "sent"))
    sort_field = enum_param(query, "sort_field", ("create_time", "send_time")) or "create_time"
    descending = enum_param(query, "sort_dir", ("ASC", "DESC")) == "DESC"
    bool_param(query, "include_resend_shortcut_eligibility")
    sent = (optional_time(query, "since_send_time"), optional_time(query, "before_send_time"))
    created = (optional_time(query, "since_create_time"), optional_time(query, "before_create_time"))
    audience = state.audience
    campaigns = [
        c
        for c in state.reports.sorted_campaigns(sort_field)
        if in_window(c.send_time, *sent)
        and in_window(c.create_time, *created)
        and status in (None, "sent")
        and query.get("type") in (None, "", "regular")
        and query.get("list_id") in (None, "", audience.list_id)
        and (not query.get("member_id") or query["member_id"] in c.recipients)
    ]
    if descending:
        campaigns.reverse()
    items = [c.to_json(audience.list_id, audience.name) for c in page.cut(campaigns)]
    return JSONResponse(project({"campaigns": items, "total_items": len(campaigns), "_links": []}, query))


def _campaign(request: Request) -> SentCampaign:
    campaign = context(request).reports.campaigns.get(request.path_params["campaign_id"])
    if campaign is None:
        raise not_found()
    return campaign


async def email_activity(request: Request) -> Response:
    """One entry per recipient; with `since`, only recipients with activity strictly after it."""
    state = context(request)
    query = checked_query(request, PAGING | {"since"})
    page = page_of(query)
    since = optional_time(query, "since")
    campaign = _campaign(request)
    audience = state.audience
    with state.reports.lock:
        if since is None:
            ids = [m for m in campaign.recipients if m in audience.members]
        else:
            ids = [
                m
                for m, acts in campaign.activity.items()
                if m in audience.members and any(a.at > since for a in acts)
            ]
        emails = [
            {
                "campaign_id": campaign.id,
                "list_id": audience.list_id,
                "list_is_active": True,
                "email_id": member_id,
                "email_address": audience.members[member_id].email,
                "activity": [
                    a.report_json()
                    for a in campaign.activity.get(member_id, ())
                    if since is None or a.at > since
                ],
                "_links": [],
            }
            for member_id in page.cut(ids)
        ]
    body = {"emails": emails, "campaign_id": campaign.id, "total_items": len(ids), "_links": []}
    return JSONResponse(project(body, query))


def _feed_json(campaign: SentCampaign | None, campaign_id: str, activity: Activity) -> dict[str, Any]:
    item: dict[str, Any] = {
        "activity_type": activity.action,
        "created_at_timestamp": iso(activity.at),
        "campaign_id": campaign_id,
        "campaign_title": campaign.title if campaign else "",
    }
    if activity.url:
        item["link_clicked"] = activity.url
    return item


async def activity_feed(request: Request) -> Response:
    """Newest first, offset paged, and (as on the real API) without `total_items`."""
    state = context(request)
    audience = list_audience(request)
    query = checked_query(request, PROJECTION | {"count", "offset", "activity_filters"})
    page = page_of(query)
    member = audience.resolve(request.path_params["subscriber_hash"])
    if member is None:
        raise not_found()
    wanted = {f.strip() for f in query.get("activity_filters", "").split(",") if f.strip()}
    with state.reports.lock:
        feed = [
            (cid, a) for cid, a in state.reports.feeds.get(member.id, ()) if not wanted or a.action in wanted
        ]
        feed.sort(key=lambda pair: pair[1].at, reverse=True)
        items = [_feed_json(state.reports.campaigns.get(cid), cid, a) for cid, a in page.cut(feed)]
    body = {"activity": items, "email_id": member.id, "list_id": audience.list_id, "_links": []}
    return JSONResponse(project(body, query))
