"""Klaviyo profiles: an incremental pull on `updated`, split into time windows paged side by side.

Klaviyo's profile filter has only `greater-than` / `less-than` on `updated` (exclusive), so every
lower bound is moved back (lookback on the bookmark, one second on resume and window joins) and the
overlap is deduplicated on (id, updated). A single cursor chain runs at request latency, so a large
range is cut into windows whose chains run concurrently; the last window has no upper bound, so a
profile updated while paging moves into it and is read again in the same run. Every page carries a
checkpoint with each window's progress, so a new process resumes each window where it stopped.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from connectors.base import Checkpoint, Page, PullStream, SkippedRecord
from connectors.http import HttpClient
from connectors.klaviyo.api import capped, filter_time, parse_time, skip_reason
from connectors.klaviyo.chains import merged
from connectors.paginate import CursorLinkPaginator, PageRequest, dig, iterate_pages
from connectors.records import Consent, Profile

PAGE_SIZE = 100
RESUME_OVERLAP = timedelta(seconds=1)
MAX_REMEMBERED = 20_000  # (id, updated) pairs kept across runs to skip what the lookback re-reads
PROFILE_FIELDS = (
    "email,external_id,created,updated,location.country,location.timezone,properties,subscriptions"
)
_CONSENT = {
    "SUBSCRIBED": Consent.SUBSCRIBED,
    "UNSUBSCRIBED": Consent.UNSUBSCRIBED,
    "NEVER_SUBSCRIBED": Consent.NEVER_SUBSCRIBED,
}


def to_profile(source: str, resource: dict[str, Any]) -> Profile:
    """One `profile` resource as a canonical Profile (raises ValidationError when it does not fit)."""
    attributes = resource.get("attributes") or {}
    location = attributes.get("location") or {}
    consent = dig(attributes, ("subscriptions", "email", "marketing", "consent"))
    return Profile(
        source=source,
        vendor_id=resource.get("id") or "",
        email=attributes.get("email") or None,
        external_id=attributes.get("external_id"),
        country=location.get("country") or None,
        timezone=location.get("timezone") or None,
        created_at=attributes.get("created"),
        updated_at=attributes.get("updated"),
        consent=_CONSENT.get(consent, Consent.UNKNOWN) if isinstance(consent, str) else Consent.UNKNOWN,
        properties=attributes.get("properties") or {},
        raw=resource,
    )


@dataclass
class Window:
    """One chain's range: profiles updated after `after` (exclusive) and before `high` (None: no end)."""

    after: datetime | None
    high: datetime | None
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "after": self.after.isoformat() if self.after else None,
            "high": self.high.isoformat() if self.high else None,
            "done": self.done,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        return cls(parse_time(data.get("after")), parse_time(data.get("high")), bool(data.get("done")))

    def filter(self) -> str | None:
        parts = []
        if self.after is not None:
            parts.append(f"greater-than(updated,{filter_time(self.after)})")
        if self.high is not None:
            parts.append(f"less-than(updated,{filter_time(self.high)})")
        return ",".join(parts) or None


def pair_key(vendor_id: str, updated: datetime) -> str:
    """A short digest of (id, updated): what the next run's lookback must not deliver again."""
    return hashlib.blake2b(f"{vendor_id}|{updated.isoformat()}".encode(), digest_size=6).hexdigest()


def split(low: datetime, high: datetime, count: int) -> list[Window]:
    """`count` windows over [low, high], each overlapping the next by a second; the last is open."""
    step = (high - low) / count
    bounds = [low + step * i for i in range(count)]
    windows = [Window(bounds[i], bounds[i + 1] + RESUME_OVERLAP) for i in range(count - 1)]
    return [*windows, Window(bounds[-1], None)]


class ProfilesStream(PullStream):
    name: ClassVar[str] = "profiles"

    def __init__(self, client: HttpClient, source: str, lookback: timedelta, windows: int) -> None:
        self.client = client
        self.source = source
        self.lookback = lookback
        self.windows = max(1, windows)
        self.min_split_range = timedelta(days=1)

    async def read(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> AsyncIterator[Page]:
        checkpoint = checkpoint or {}
        watermark = parse_time(checkpoint.get("watermark"))
        if "windows" in checkpoint:
            windows = [Window.from_json(w) for w in checkpoint["windows"]]
            run = _Run(self, windows, watermark, parse_time(checkpoint.get("max_seen")))
        else:
            run = _Run(self, await self._plan(watermark, sync_started_at), watermark, None)
            run.delivered.update(checkpoint.get("recent") or ())
        async for page in run.pages():
            yield page
        yield Page((), run.final(sync_started_at))

    async def _plan(self, watermark: datetime | None, sync_started_at: datetime) -> list[Window]:
        if watermark is not None:
            low: datetime | None = watermark - self.lookback
        else:
            oldest = await self._oldest_update()
            low = oldest - RESUME_OVERLAP if oldest is not None else None
        if low is None or self.windows == 1 or sync_started_at - low < self.min_split_range:
            return [Window(low, None)]
        return split(low, sync_started_at, self.windows)

    async def _oldest_update(self) -> datetime | None:
        """The first `updated` on the account (one small request), to place the first backfill's windows."""
        params = {"sort": "updated", "page[size]": "1", "fields[profile]": "updated"}
        response = await self.client.request("GET", "/api/profiles", params=params, limit_key="get_profiles")
        return parse_time(dig(response.json(), ("data", 0, "attributes", "updated")))

    def first_request(self, window: Window) -> PageRequest:
        params = {
            "sort": "updated",
            "page[size]": str(PAGE_SIZE),
            "additional-fields[profile]": "subscriptions",
            "fields[profile]": PROFILE_FIELDS,
        }
        if (text := window.filter()) is not None:
            params["filter"] = text
        return PageRequest("/api/profiles", params)

    def convert(self, resources: list[Any]) -> tuple[list[Profile], list[SkippedRecord], datetime | None]:
        records, skipped, last = [], [], None
        for resource in resources:
            raw_id = resource.get("id") if isinstance(resource, dict) else None
            vendor_id = raw_id if isinstance(raw_id, str) else None
            try:
                profile = to_profile(self.source, resource)
            except (ValueError, AttributeError, TypeError) as exc:
                skipped.append(SkippedRecord(self.name, vendor_id, skip_reason(exc)))
                continue
            records.append(profile)
            last = profile.updated_at if last is None else max(last, profile.updated_at)
        return records, skipped, last


class _Run:
    """The windows of one run, paged concurrently; pages come out one at a time with a checkpoint."""

    def __init__(
        self,
        stream: ProfilesStream,
        windows: list[Window],
        watermark: datetime | None,
        max_seen: datetime | None,
    ) -> None:
        self.stream = stream
        self.windows = windows
        self.watermark = watermark
        self.max_seen = max_seen
        self.seen: dict[str, datetime] = {}  # pair_key -> updated, for everything this run delivered
        self.delivered: set[str] = set()  # pair keys the previous run delivered near its bookmark

    def checkpoint(self) -> Checkpoint:
        return {
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "max_seen": self.max_seen.isoformat() if self.max_seen else None,
            "windows": [w.to_json() for w in self.windows],
        }

    async def pages(self) -> AsyncIterator[Page]:
        pending = [i for i, w in enumerate(self.windows) if not w.done]
        async for position, body in merged([self._chain(i) for i in pending]):
            index = pending[position]
            if body is None:
                self.windows[index].done = True
            else:
                yield self._page(index, body)

    def final(self, sync_started_at: datetime) -> Checkpoint:
        """The bookmark after a complete run, with the pairs its lookback will meet again."""
        final = self.watermark
        if self.max_seen is not None:
            reached = capped(self.max_seen, sync_started_at, self.stream.lookback)
            final = max(final, reached) if final is not None else reached
        if final is None:
            return {"watermark": None}
        floor = final - self.stream.lookback - RESUME_OVERLAP
        recent = sorted((t, k) for k, t in self.seen.items() if t > floor)[-MAX_REMEMBERED:]
        return {"watermark": final.isoformat(), "recent": [k for _, k in recent]}

    def _page(self, index: int, resources: list[Any]) -> Page:
        records, skipped, last = self.stream.convert(resources)
        fresh = []
        for record in records:
            key = pair_key(record.vendor_id, record.updated_at)
            if key in self.seen:
                continue
            self.seen[key] = record.updated_at
            if key not in self.delivered:
                fresh.append(record)
        if last is not None:
            window = self.windows[index]
            window.after = max(window.after or last, last - RESUME_OVERLAP)
            self.max_seen = max(self.max_seen or last, last)
        return Page(fresh, self.checkpoint(), skipped)

    async def _chain(self, index: int) -> AsyncIterator[list[Any]]:
        stream = self.stream
        pages = iterate_pages(
            stream.client,
            stream.first_request(self.windows[index]),
            CursorLinkPaginator(),
            limit_key="get_profiles",
            count_records=lambda body: len(body.get("data") or []),
        )
        async for _request, body in pages:
            data = body.get("data") if isinstance(body, dict) else None
            yield data if isinstance(data, list) else []
