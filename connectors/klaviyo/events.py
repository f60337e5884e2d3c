"""Klaviyo events: metrics resolved to ids once per run, then datetime cursor chains per metric.

Metric names repeat across integrations (an API-sent "Placed Order" next to Shopify's), so each
wanted metric is chosen by name AND integration. Events are paged per metric with
`greater-or-equal(datetime, bookmark - lookback)` (a long range, such as a first pull, cut into
`less-than` windows paged side by side), deduplicated on the event id, and turned into
canonical records: Placed Order -> `Order` (lines from its `Items`), Received/Opened/Clicked Email ->
`EngagementEvent`. The customer's email comes from the included profile.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from connectors.base import Checkpoint, Page, PullStream, SkippedRecord
from connectors.http import HttpClient
from connectors.klaviyo.api import capped, filter_time, parse_time, skip_reason
from connectors.klaviyo.chains import merged
from connectors.paginate import CursorLinkPaginator, PageRequest, dig, iterate_pages
from connectors.records import EngagementEvent, EventKind, Order, OrderLine


@dataclass(frozen=True, slots=True)
class WantedMetric:
    name: str
    integration: str  # matched against the metric's integration key or name, case-insensitively


ORDER_METRICS = ("Placed Order",)
MIN_SPLIT_RANGE = timedelta(days=1)  # a shorter range is one chain: splitting it would not pay
MAX_REMEMBERED = 20_000  # event ids kept across runs so the lookback does not deliver them again
EMAIL_KINDS = {
    "Received Email": EventKind.RECEIVED,
    "Opened Email": EventKind.OPENED,
    "Clicked Email": EventKind.CLICKED,
}


def wanted_metrics(order_integration: str) -> tuple[WantedMetric, ...]:
    orders = tuple(WantedMetric(name, order_integration) for name in ORDER_METRICS)
    return orders + tuple(WantedMetric(name, "klaviyo") for name in EMAIL_KINDS)


def _integration_matches(metric: dict[str, Any], wanted: WantedMetric) -> bool:
    integration = dig(metric, ("attributes", "integration")) or {}
    names = (
        {str(integration.get(k, "")).lower() for k in ("key", "name")}
        if isinstance(integration, dict)
        else set()
    )
    return wanted.integration.lower() in names


async def resolve_metrics(client: HttpClient, wanted: tuple[WantedMetric, ...]) -> dict[str, str]:
    """Metric name -> id for every wanted metric the account has (absent ones are simply left out)."""
    first = PageRequest("/api/metrics", {"fields[metric]": "name,integration"})
    found: dict[str, str] = {}
    pages = iterate_pages(
        client, first, CursorLinkPaginator(), limit_key="get_metrics", count_records=lambda b: 0
    )
    async for _request, body in pages:
        for metric in body.get("data") or []:
            for want in wanted:
                if dig(metric, ("attributes", "name")) == want.name and _integration_matches(metric, want):
                    found.setdefault(want.name, metric["id"])
    return found


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _line(order_id: str, index: int, item: dict[str, Any]) -> OrderLine:
    categories = item.get("Categories")
    return OrderLine(
        vendor_id=str(item.get("$event_id") or f"{order_id}:{index}"),
        product_id=str(item["ProductID"]) if item.get("ProductID") is not None else None,
        category=str(categories[0]) if isinstance(categories, list) and categories else None,
        quantity=int(_number(item.get("Quantity"), 1)),
        unit_price=_number(item.get("ItemPrice")),
        discount=_number(item.get("Discount")),
    )


@dataclass(frozen=True, slots=True)
class EventContext:
    source: str
    metric: str
    currency: str
    emails: dict[str, str | None]


def to_order(event: dict[str, Any], ctx: EventContext) -> Order:
    attributes = event.get("attributes") or {}
    props = attributes.get("event_properties") or {}
    profile_id = dig(event, ("relationships", "profile", "data", "id"))
    order_id = str(props.get("$event_id") or event.get("id") or "")
    items = props.get("Items") if isinstance(props.get("Items"), list) else []
    codes = props.get("Discount Codes")
    return Order(
        source=ctx.source,
        vendor_id=order_id,
        customer_vendor_id=profile_id,
        email=ctx.emails.get(profile_id) if profile_id else None,
        ordered_at=attributes.get("datetime"),
        updated_at=attributes.get("datetime"),
        currency=str(props.get("$currency_code") or ctx.currency),
        total=props.get("$value"),
        discount_total=_number(props.get("Total Discounts")),
        discount_code=str(codes[0]) if isinstance(codes, list) and codes else None,
        lines=tuple(_line(order_id, i, item) for i, item in enumerate(items) if isinstance(item, dict)),
        raw=event,
    )


def to_engagement(event: dict[str, Any], ctx: EventContext) -> EngagementEvent:
    attributes = event.get("attributes") or {}
    props = attributes.get("event_properties") or {}
    profile_id = dig(event, ("relationships", "profile", "data", "id"))
    return EngagementEvent(
        source=ctx.source,
        vendor_id=str(event.get("id") or ""),
        customer_vendor_id=profile_id,
        email=ctx.emails.get(profile_id) if profile_id else None,
        kind=EMAIL_KINDS[ctx.metric],
        occurred_at=attributes.get("datetime"),
        campaign_id=str(props["$message"]) if props.get("$message") else None,
        url=str(props["URL"]) if props.get("URL") else None,
        raw=event,
    )


Converter = Callable[[dict[str, Any], EventContext], Order | EngagementEvent]


def converter_for(metric: str) -> Converter:
    return to_order if metric in ORDER_METRICS else to_engagement


def included_emails(body: dict[str, Any]) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for resource in body.get("included") or []:
        if isinstance(resource, dict) and resource.get("type") == "profile":
            found[str(resource.get("id"))] = dig(resource, ("attributes", "email")) or None
    return found


@dataclass
class _MetricProgress:
    """One metric's bookmark (`watermark`, after a finished run) and position in a running one."""

    watermark: datetime | None
    start: datetime | None
    seen: dict[str, datetime | None]  # event id -> datetime, for every event this run delivered
    max_seen: datetime | None = None

    @classmethod
    def load(cls, state: dict[str, Any], lookback: timedelta) -> _MetricProgress:
        watermark = parse_time(state.get("watermark"))
        start = parse_time(state.get("after")) or (watermark - lookback if watermark else None)
        return cls(watermark, start, dict.fromkeys(state.get("recent") or ()))

    def advance(self, last: datetime | None, windowed: bool) -> dict[str, Any]:
        """The state after a page whose latest event is `last` (ties re-read on resume, deduplicated).

        Windows of one metric run side by side, so the latest event seen says nothing about the
        earlier windows: a windowed run resumes from its start (the store upserts what comes again).
        """
        if last is not None:
            self.max_seen = max(self.max_seen or last, last)
        after = self.start if windowed else self.max_seen or self.start
        return {
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "after": after.isoformat() if after else None,
        }

    def finish(self, sync_started_at: datetime, lookback: timedelta) -> dict[str, Any]:
        if self.max_seen is not None:
            reached = capped(self.max_seen, sync_started_at, lookback)
            self.watermark = max(self.watermark, reached) if self.watermark else reached
        if self.watermark is None:
            return {"watermark": None}
        floor = self.watermark - lookback - timedelta(seconds=1)
        recent = [key for key, moment in self.seen.items() if moment is not None and moment > floor]
        return {"watermark": self.watermark.isoformat(), "recent": recent[-MAX_REMEMBERED:]}


class EventsStream(PullStream):
    name: ClassVar[str] = "events"

    def __init__(
        self,
        client: HttpClient,
        source: str,
        lookback: timedelta,
        *,
        order_integration: str = "shopify",
        currency: str = "USD",
        page_size: int = 200,
        windows: int = 1,
    ) -> None:
        self.client = client
        self.source = source
        self.lookback = lookback
        self.wanted = wanted_metrics(order_integration)
        self.currency = currency
        self.page_size = page_size
        self.windows = max(1, windows)
        self.metric_ids: dict[str, str] | None = None

    async def read(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> AsyncIterator[Page]:
        """Every wanted metric's chain runs concurrently; each page's checkpoint holds all of them."""
        if self.metric_ids is None:
            self.metric_ids = await resolve_metrics(self.client, self.wanted)
        states: dict[str, dict[str, Any]] = dict((checkpoint or {}).get("metrics") or {})
        names = [w.name for w in self.wanted if w.name in self.metric_ids]
        progress = {name: _MetricProgress.load(states.get(name) or {}, self.lookback) for name in names}
        plans = {name: await self._plan(name, progress[name].start, sync_started_at) for name in names}
        owners = [name for name in names for _window in plans[name]]
        running = Counter(owners)
        chains = [self._bodies(name, low, high) for name in names for low, high in plans[name]]
        async for index, body in merged(chains):
            metric = owners[index]
            if body is None:
                running[metric] -= 1
                if not running[metric]:
                    states[metric] = progress[metric].finish(sync_started_at, self.lookback)
                    yield Page((), {"metrics": dict(states)})
                continue
            records, skipped, last = self._convert(metric, body, progress[metric].seen)
            states[metric] = progress[metric].advance(last, windowed=len(plans[metric]) > 1)
            yield Page(records, {"metrics": dict(states)}, skipped)

    async def _plan(
        self, metric: str, start: datetime | None, sync_started_at: datetime
    ) -> list[tuple[datetime | None, datetime | None]]:
        """[low, high) datetime windows for one metric's chains: a long range (a first pull, a long
        pause) is cut into `windows` even parts, paged side by side (notes section 3: one cursor
        chain is capped by latency); the last part is open-ended like an unsplit pull."""
        low = start if start is not None or self.windows == 1 else await self._oldest(metric)
        if low is None or self.windows == 1 or sync_started_at - low < MIN_SPLIT_RANGE:
            return [(start, None)]
        step = (sync_started_at - low) / self.windows
        bounds = [low + step * i for i in range(self.windows)]
        return [*itertools.pairwise(bounds), (bounds[-1], None)]

    async def _oldest(self, metric: str) -> datetime | None:
        """The metric's first event time (one small request), to place a first pull's windows."""
        assert self.metric_ids is not None
        params = {
            "filter": f'equals(metric_id,"{self.metric_ids[metric]}")',
            "sort": "datetime",
            "page[size]": "1",
            "fields[event]": "datetime",
        }
        response = await self.client.request("GET", "/api/events", params=params, limit_key="get_events")
        return parse_time(dig(response.json(), ("data", 0, "attributes", "datetime")))

    async def _bodies(
        self, metric: str, start: datetime | None, end: datetime | None
    ) -> AsyncIterator[dict[str, Any]]:
        assert self.metric_ids is not None
        conditions = [f'equals(metric_id,"{self.metric_ids[metric]}")']
        if start is not None:
            conditions.append(f"greater-or-equal(datetime,{filter_time(start)})")
        if end is not None:
            conditions.append(f"less-than(datetime,{filter_time(end)})")
        params = {
            "filter": ",".join(conditions),
            "sort": "datetime",
            "page[size]": str(self.page_size),
            "include": "profile",
            "fields[event]": "datetime,event_properties",
            "fields[profile]": "email",
        }
        pages = iterate_pages(
            self.client,
            PageRequest("/api/events", params),
            CursorLinkPaginator(),
            limit_key="get_events",
            count_records=lambda b: len(b.get("data") or []),
        )
        async for _request, body in pages:
            yield body if isinstance(body, dict) else {}

    def _convert(
        self, metric: str, body: dict[str, Any], seen: dict[str, datetime | None]
    ) -> tuple[list[Order | EngagementEvent], list[SkippedRecord], datetime | None]:
        ctx = EventContext(self.source, metric, self.currency, included_emails(body))
        convert = converter_for(metric)
        records: list[Order | EngagementEvent] = []
        skipped: list[SkippedRecord] = []
        last: datetime | None = None
        for event in body.get("data") or []:
            raw_id = event.get("id") if isinstance(event, dict) else None
            event_id = raw_id if isinstance(raw_id, str) else None
            if event_id in seen:  # delivered earlier in this run, or by the last run near its bookmark
                seen[event_id] = seen[event_id] or parse_time(dig(event, ("attributes", "datetime")))
                continue
            try:
                record = convert(event, ctx)
            except (ValueError, AttributeError, TypeError, OverflowError) as exc:
                skipped.append(SkippedRecord(self.name, event_id, skip_reason(exc)))
                continue
            # the event's `datetime`, already parsed and validated (as UTC) by the canonical record
            moment = record.ordered_at if isinstance(record, Order) else record.occurred_at
            seen[str(event_id)] = moment
            records.append(record)
            last = moment if last is None or (moment and moment > last) else last
        return records, skipped, last
