"""Per-contact campaign engagement (`GET /contacts/{id}/campaignStats`), bounded per run.

Each contact costs one request from the contacts family that pull and push share, so this stream
reads at most `max_contacts` per run: the most recently created of those modified since the last
run (minus the lookback), over the last 90 days (Brevo's maximum span). Opens and clicks do not
modify a contact, so this is a top-up, not a complete event feed: Brevo offers marketing events
with timestamps only through webhooks. Each event's id is (contact, campaign, kind, time[, url]),
so re-reading a window is a harmless upsert. A run's pending contact ids ride in the checkpoint,
so a new process finishes the run without listing again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import ValidationError

from connectors.base import Checkpoint, Page, PullStream, SkippedRecord
from connectors.brevo.api import CONTACTS, get_json, parse_time, wire_time
from connectors.brevo.incremental import StreamContext
from connectors.http import RecordRejected
from connectors.records import EngagementEvent, EventKind

STATS_DAYS = 90
CONTACTS_PER_PAGE = 25
_SIMPLE = {
    "messagesSent": EventKind.RECEIVED,
    "hardBounces": EventKind.BOUNCED,
    "softBounces": EventKind.BOUNCED,
    "complaints": EventKind.MARKED_SPAM,
    "opened": EventKind.OPENED,
}


@dataclass(frozen=True, slots=True)
class _Hit:
    kind: EventKind
    campaign: Any
    at: str
    url: str | None = None


def _hits(stats: dict[str, Any]) -> Iterator[_Hit]:
    for key, kind in _SIMPLE.items():
        for item in stats.get(key) or []:
            yield _Hit(kind, item.get("campaignId"), item["eventTime"])
    for item in stats.get("clicked") or []:
        for link in item.get("links") or []:
            yield _Hit(EventKind.CLICKED, item.get("campaignId"), link["eventTime"], link.get("url"))
    for item in (stats.get("unsubscriptions") or {}).get("userUnsubscription") or []:
        yield _Hit(EventKind.UNSUBSCRIBED, item.get("campaignId"), item["eventTime"])


class CampaignStatsStream(PullStream):
    name: ClassVar[str] = "campaign_stats"

    def __init__(self, ctx: StreamContext, *, max_contacts: int) -> None:
        self.ctx = ctx
        self.max_contacts = max(1, min(1000, max_contacts))

    async def read(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> AsyncIterator[Page]:
        run = (checkpoint or {}).get("run")
        if isinstance(run, dict):
            t_start, pending = parse_time(run["t_start"]), [str(i) for i in run["pending"]]
        else:
            t_start = min(self.ctx.now(), sync_started_at) - self.ctx.settle
            pending = await self._recent(checkpoint)
        window = {
            "startDate": str((t_start - timedelta(days=STATS_DAYS - 1)).date()),
            "endDate": str(t_start.date()),
        }
        while True:
            chunk, pending = pending[:CONTACTS_PER_PAGE], pending[CONTACTS_PER_PAGE:]
            records, skipped = [], []
            for contact_id in chunk:
                await self._one(contact_id, window, records, skipped)
            done = {"watermark": wire_time(t_start)}
            yield Page(
                records,
                {"run": {"t_start": wire_time(t_start), "pending": pending}} if pending else done,
                skipped,
            )
            if not pending:
                return

    async def _recent(self, checkpoint: Checkpoint | None) -> list[str]:
        params: dict[str, Any] = {"sort": "desc", "limit": self.max_contacts, "offset": 0}
        watermark = (checkpoint or {}).get("watermark")
        if watermark:
            params["modifiedSince"] = wire_time(parse_time(watermark) - self.ctx.lookback)
        body = await get_json(self.ctx.client, "contacts", family=CONTACTS, **params)
        return [
            str(c["id"])
            for c in body.get("contacts") or []
            if isinstance(c, dict) and c.get("id") is not None
        ]

    async def _one(
        self,
        contact_id: str,
        window: dict[str, str],
        records: list[EngagementEvent],
        skipped: list[SkippedRecord],
    ) -> None:
        try:
            stats = await get_json(
                self.ctx.client, f"contacts/{contact_id}/campaignStats", family=CONTACTS, **window
            )
        except RecordRejected as exc:  # deleted since it was listed
            skipped.append(SkippedRecord(self.name, contact_id, exc.verdict.message))
            return
        try:
            records.extend(self._event(contact_id, hit) for hit in _hits(stats))
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            skipped.append(
                SkippedRecord(self.name, contact_id, f"unreadable campaign stats: {type(exc).__name__}")
            )

    def _event(self, contact_id: str, hit: _Hit) -> EngagementEvent:
        at = parse_time(hit.at)
        suffix = f":{hit.url}" if hit.url else ""
        return EngagementEvent(
            source=self.ctx.source,
            vendor_id=f"{contact_id}:{hit.campaign}:{hit.kind.value}:{wire_time(at)}{suffix}",
            customer_vendor_id=contact_id,
            kind=hit.kind,
            occurred_at=at,
            campaign_id=str(hit.campaign) if hit.campaign is not None else None,
            url=hit.url,
            raw={"campaignId": hit.campaign, "eventTime": hit.at, "url": hit.url},
        )
