"""Customers and orders: the watermark loop of notes §5, page by page.

One run asks `updated_at:>='<W − lag>'` sorted by UPDATED_AT ascending, with W the saved watermark.
The search index lags behind writes and matches coarsely, so rows older than W − lag are dropped
locally and (id, updatedAt) pairs already seen in this run are skipped. A page's checkpoint keeps the
run's filter and cursor (a cursor is only valid with the same query), so a new process resumes after
that page; the last page's checkpoint moves W to the newest `updatedAt` seen, capped at
sync start − lag, so rows changed while the sync ran are read again next time.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from connectors.base import Checkpoint, Page, PulledRecord, PullStream, SkippedRecord
from connectors.paginate import dig
from connectors.shopify import documents, mapping
from connectors.shopify.api import Document, ShopifyApi

log = logging.getLogger("espd.connectors.shopify")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _aware_time(value: Any) -> datetime | None:
    """A node's timestamp for the freshness check, or None when it is not a zoned ISO time."""
    try:
        moment = parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


MAX_REMEMBERED = 20_000  # (id, updatedAt) pairs carried to the next run, to skip what its lookback re-reads


def digest(record_id: str, updated: str) -> str:
    """A short digest of (id, updatedAt): 48 bits, so 20,000 of them practically never collide."""
    key = f"{record_id}|{updated}".encode("utf-8", "surrogatepass")  # hostile text must not crash
    return hashlib.blake2b(key, digest_size=6).hexdigest()


@dataclass(frozen=True, slots=True)
class Position:
    """Where a stream stands. `since`/`after`/`high` are set only between the pages of one run;
    `skip` holds the digests of the rows the previous run already delivered inside the lookback."""

    watermark: datetime | None = None
    since: datetime | None = None
    after: str | None = None
    high: datetime | None = None
    skip: frozenset[str] = frozenset()

    @classmethod
    def load(cls, checkpoint: Checkpoint | None) -> Position:
        state = checkpoint or {}

        def when(key: str) -> datetime | None:
            value = state.get(key)
            return parse_time(value) if value else None

        skip = frozenset(state.get("skip") or ())
        return cls(when("watermark"), when("since"), state.get("after"), when("high"), skip)

    def dump(self) -> Checkpoint:
        out: Checkpoint = {"watermark": iso(self.watermark) if self.watermark else None}
        if self.after is not None:
            out.update(since=iso(self.since) if self.since else None, after=self.after)
            out["high"] = iso(self.high) if self.high else None
        if self.skip:
            out["skip"] = sorted(self.skip)
        return out


@dataclass
class Run:
    """One pass of the watermark loop: the fixed filter, what was seen, the newest change."""

    since: datetime | None
    high: datetime | None
    skip: frozenset[str]
    seen: set[str] = field(default_factory=set)
    recent: list[tuple[datetime, str]] = field(default_factory=list)  # min-heap of the newest pairs

    @property
    def search(self) -> str | None:
        return f"updated_at:>='{iso(self.since)}'" if self.since else None

    def fresh(self, node: Any) -> bool:
        """Newer than the filter's bound and not delivered before (this run or the last one)."""
        updated = _aware_time(node.get("updatedAt")) if isinstance(node, dict) else None
        if updated is None:
            return True  # let the mapping reject it with a reason
        if self.since is not None and updated < self.since:
            return False
        key = digest(str(node.get("id")), node["updatedAt"])
        if key in self.seen:
            return False
        self.seen.add(key)
        heapq.heappush(self.recent, (updated, key))
        if len(self.recent) > MAX_REMEMBERED:
            heapq.heappop(self.recent)
        self.high = max(self.high, updated) if self.high else updated
        return key not in self.skip

    def finished(self, watermark: datetime | None, cap: datetime, lag: timedelta) -> Position:
        """The next run's start: the newest change seen, never past sync start − lag, with the
        pairs the next run's lookback will meet again."""
        newest = max((t for t in (watermark, self.high) if t is not None), default=None)
        if newest is None:
            return Position()
        reached = min(newest, cap)
        return Position(reached, skip=frozenset(k for t, k in self.recent if t >= reached - lag))


class WatermarkStream(PullStream):
    document: ClassVar[Document]
    root: ClassVar[str]

    def __init__(self, api: ShopifyApi, source: str, lag: timedelta) -> None:
        self.api = api
        self.source = source
        self.lag = lag

    def read(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> AsyncIterator[Page]:
        return self._pages(Position.load(checkpoint), sync_started_at - self.lag)

    async def _pages(self, position: Position, cap: datetime) -> AsyncIterator[Page]:
        async for page in self.paged(position, cap):
            yield page

    async def paged(self, position: Position, cap: datetime) -> AsyncIterator[Page]:
        if position.after is not None:
            run = Run(position.since, position.high, position.skip)
        else:
            since = position.watermark - self.lag if position.watermark else None
            run = Run(since, None, position.skip)
        after = position.after
        while True:
            data = await self.api.call(self.document, {"q": run.search, "after": after})
            connection = data[self.root]
            nodes = [n for n in connection.get("nodes") or [] if run.fresh(n)]
            records, skipped = await self.convert(nodes)
            info = connection.get("pageInfo") or {}
            after = info.get("endCursor") if info.get("hasNextPage") else None
            if after is None:
                done = run.finished(position.watermark, cap, self.lag)
                yield Page(records, done.dump(), skipped)
                return
            here = Position(position.watermark, run.since, after, run.high, position.skip)
            yield Page(records, here.dump(), skipped)

    async def convert(self, nodes: Sequence[Any]) -> tuple[list[PulledRecord], list[SkippedRecord]]:
        """Canonical records; a node that does not fit is skipped with its reason, the rest go on."""
        records: list[PulledRecord] = []
        skipped: list[SkippedRecord] = []
        for node in nodes:
            try:
                record = await self.record(node)
            except mapping.BAD_RECORD as exc:
                skipped.append(mapping.skipped(self.name, node, exc))
                continue
            if record is not None:
                records.append(record)
        return records, skipped

    async def record(self, node: Any) -> PulledRecord | None:
        """One node as a canonical record, or None for a node that is dropped on purpose."""
        raise NotImplementedError


class CustomersStream(WatermarkStream):
    name = "customers"
    document = documents.CUSTOMERS
    root = "customers"

    async def record(self, node: Any) -> PulledRecord | None:
        return mapping.profile(node, self.source)


class OrdersStream(WatermarkStream):
    """Orders with all their line items; test orders are dropped (they are not purchases)."""

    name = "orders"
    document = documents.ORDERS
    root = "orders"

    async def record(self, node: Any) -> PulledRecord | None:
        if node.get("test") is True:
            return None
        return mapping.order(node, await self._lines(node), self.source)

    async def _lines(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        """The first page of line items, plus the rest through `order(id:)` when there are more."""
        connection = node["lineItems"]
        lines = list(connection.get("nodes") or [])
        info = connection.get("pageInfo") or {}
        while info.get("hasNextPage"):
            data = await self.api.call(
                documents.ORDER_LINES_REST, {"id": node["id"], "after": info.get("endCursor")}
            )
            more = dig(data, ("order", "lineItems")) or {}
            lines += more.get("nodes") or []
            info = more.get("pageInfo") or {}
        return lines
