"""Email campaigns and per-contact campaign statistics, derived from the shop's email events.

The shop's events become Brevo's views of them: aggregate counts per campaign (`globalStats`,
`linksStats`) for `/emailCampaigns`, and per-contact lists (`messagesSent`, `delivered`, `opened`
with a count, `clicked` grouped by link, bounces, unsubscriptions) for `campaignStats`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from simulators.dataset import EmailEventKind

_STAT_KEYS = (
    "sent",
    "delivered",
    "viewed",
    "uniqueViews",
    "clickers",
    "uniqueClicks",
    "hardBounces",
    "softBounces",
    "complaints",
    "unsubscriptions",
    "trackableViews",
)


@dataclass(slots=True)
class StatEvent:
    campaign_id: int
    kind: EmailEventKind
    at: datetime
    url: str | None = None


@dataclass(slots=True)
class CampaignRecord:
    id: int
    name: str
    sent_at: datetime
    discount_offer: bool
    counts: Counter[str] = field(default_factory=Counter)
    links: Counter[str] = field(default_factory=Counter)
    openers: set[int] = field(default_factory=set)
    clickers: set[int] = field(default_factory=set)

    def record(self, contact_id: int, event: StatEvent) -> None:
        """Fold one event into the aggregate report."""
        if event.kind == "received":
            self.counts["sent"] += 1
            self.counts["delivered"] += 1
        elif event.kind == "bounced":
            self.counts["delivered"] -= 1
            self.counts["hardBounces"] += 1
        elif event.kind == "opened":
            self.counts["viewed"] += 1
            self.counts["trackableViews"] += 1
            self.openers.add(contact_id)
        elif event.kind == "clicked":
            self.counts["clickers"] += 1
            self.clickers.add(contact_id)
            if event.url:
                self.links[event.url] += 1
        elif event.kind == "unsubscribed":
            self.counts["unsubscriptions"] += 1

    def global_stats(self) -> dict[str, int]:
        stats = {key: max(0, self.counts[key]) for key in _STAT_KEYS}
        stats["uniqueViews"] = len(self.openers)
        stats["uniqueClicks"] = len(self.clickers)
        return stats


def ip_for(contact_id: int) -> str:
    """A stable, documentation-range address per contact (Brevo reports the opener's IP)."""
    return f"198.51.{contact_id // 250 % 250}.{contact_id % 250 + 1}"


def contact_campaign_stats(
    contact_id: int,
    events: list[StatEvent],
    time_text: Any,
    window: tuple[date, date] | None,
) -> dict[str, Any]:
    """`getContactCampaignStats` for one contact; `window` keeps events of those days (inclusive)."""
    if window is not None:
        events = [e for e in events if window[0] <= e.at.date() <= window[1]]
    sent = [e for e in events if e.kind == "received"]
    bounced = {e.campaign_id for e in events if e.kind == "bounced"}
    ip = ip_for(contact_id)
    return {
        "messagesSent": [{"campaignId": e.campaign_id, "eventTime": time_text(e.at)} for e in sent],
        "delivered": [
            {"campaignId": e.campaign_id, "eventTime": time_text(e.at)}
            for e in sent
            if e.campaign_id not in bounced
        ],
        "hardBounces": [
            {"campaignId": e.campaign_id, "eventTime": time_text(e.at)} for e in events if e.kind == "bounced"
        ],
        "softBounces": [],
        "complaints": [],
        "opened": _opened(events, time_text, ip),
        "clicked": _clicked(events, time_text, ip),
        "unsubscriptions": {
            "userUnsubscription": [
                {"campaignId": e.campaign_id, "eventTime": time_text(e.at), "ip": ip}
                for e in events
                if e.kind == "unsubscribed"
            ],
            "adminUnsubscription": [],
        },
    }


def _opened(events: list[StatEvent], time_text: Any, ip: str) -> list[dict[str, Any]]:
    """One entry per campaign: how many opens, and when the first one happened."""
    by_campaign: dict[int, list[datetime]] = defaultdict(list)
    for e in events:
        if e.kind == "opened":
            by_campaign[e.campaign_id].append(e.at)
    return [
        {"campaignId": cid, "count": len(times), "eventTime": time_text(min(times)), "ip": ip}
        for cid, times in by_campaign.items()
    ]


def _clicked(events: list[StatEvent], time_text: Any, ip: str) -> list[dict[str, Any]]:
    """One entry per campaign with one link entry per URL (count and first click)."""
    by_campaign: dict[int, dict[str, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    for e in events:
        if e.kind == "clicked":
            by_campaign[e.campaign_id][e.url or ""].append(e.at)
    return [
        {
            "campaignId": cid,
            "links": [
                {"count": len(times), "eventTime": time_text(min(times)), "ip": ip, "url": url}
                for url, times in links.items()
            ],
        }
        for cid, links in by_campaign.items()
    ]
