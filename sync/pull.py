"""The pull stage: every enabled stream of every connector, page by page, into the store.

Connectors pull concurrently (each within its own rate limits); the streams of one connector run one
after the other so they share its quota fairly. Pages are written in batches of about
`BATCH_RECORDS` records, each with the checkpoint of its last page in one transaction, on a worker
thread so the event loop keeps the other connectors' requests moving.
A connector whose credentials fail stops with a clear message while the others go on; a stream that
fails keeps the checkpoint of its last good page, so the next run resumes there.
Each stream is pulled under a lease (sync/leases.py): a stream another espd is pulling is left to it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from connectors.base import Connector, Page, PullStream
from connectors.http import ApiError, AuthFailed
from sync import tables
from sync.ingest import IngestPolicy, PageWrite, write_page
from sync.leases import Lease, LeaseBook, pull_key
from sync.store import session_scope

log = logging.getLogger("espd.pull")
# Pages are written together up to about this many records: a page's commit and identity lookups
# cost more than its rows when pages are small (Shopify's GraphQL order pages hold ~14 orders).
BATCH_RECORDS = 2_000
# Young-generation collection threshold while any stream is pulled (Python's default is 700). A
# batch holds tens of thousands of short-lived, acyclic containers (vendor JSON, canonical records):
# at 700 the collector ran hundreds of times per batch, promoted each batch's live records and then
# walked the whole heap in full collections, about a third of the pull's CPU (py-spy on
# bench/pull_throughput.py). The default comes back when the last pull ends.
PULL_GC_THRESHOLD = 50_000
_gc_lock = threading.Lock()
_gc_pulls = 0
_gc_saved: tuple[int, int, int] = gc.get_threshold()


@dataclass
class StreamReport:
    connector: str
    stream: str
    pulled: int = 0
    skipped: int = 0
    pages: int = 0
    error: str | None = None
    unchanged: int = 0  # records that were only espd's own pushes coming back (not written)
    auth_failed: bool = False
    held_elsewhere: bool = False  # another espd process held the stream's lease: not pulled here
    skip_reasons: dict[str, int] = field(default_factory=dict)


def _load_checkpoint(engine: Engine, connector: str, stream: str) -> dict | None:
    with Session(engine) as session:
        state = session.get(tables.SyncState, (connector, stream))
        return state.cursor if state is not None else None


def store_pages(
    engine: Engine, connector: str, stream: str, pages: Sequence[Page], policy: IngestPolicy
) -> PageWrite:
    """Write consecutive pages of one stream as one page, in one transaction, with the last checkpoint."""
    merged = Page(
        [r for p in pages for r in p.records], pages[-1].checkpoint, [s for p in pages for s in p.skipped]
    )
    with session_scope(engine) as session:
        return write_page(session, connector, stream, merged, policy)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Raise the young-generation threshold to `PULL_GC_THRESHOLD` for the pulls running (nested
    and concurrent ones counted, so the first to start saves the setting and the last to end restores it)."""
    global _gc_pulls, _gc_saved
    with _gc_lock:
        if _gc_pulls == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(PULL_GC_THRESHOLD, _gc_saved[0]), *_gc_saved[1:])
        _gc_pulls += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pulls -= 1
            if _gc_pulls == 0:
                gc.set_threshold(*_gc_saved)


class LeaseLost(Exception):
    """This process stalled past its lease and another took the stream over: stop pulling it."""


async def pull_stream(
    connector: Connector,
    stream: PullStream,
    engine: Engine,
    policy: IngestPolicy,
    started: datetime,
    lease: Lease | None = None,
) -> StreamReport:
    """Pull one stream to its end; an API error ends it with the pages so far kept and reported."""
    report = StreamReport(connector.name, stream.name)
    try:
        with _fewer_collections():
            await _pull_pages(connector, stream, engine, policy, started, report, lease)
    except LeaseLost as exc:
        report.error = str(exc)
        log.error("event=stream_lease_lost connector=%s stream=%s", connector.name, stream.name)
    except ApiError as exc:
        report.error = str(exc)
        report.auth_failed = isinstance(exc, AuthFailed)
        event = "connector_auth_failed" if report.auth_failed else "stream_failed"
        log.error("event=%s connector=%s stream=%s error=%s", event, connector.name, stream.name, exc)
    return report


async def _pull_pages(
    connector: Connector,
    stream: PullStream,
    engine: Engine,
    policy: IngestPolicy,
    started: datetime,
    report: StreamReport,
    lease: Lease | None,
) -> None:
    """Read the stream, writing its pages in batches of about `BATCH_RECORDS` records.

    Each batch goes in one transaction with the checkpoint of its last page, so a crash re-reads at
    most one batch; pages read before an API error are still written. A batch is written (on its
    worker thread) while the next one is read and parsed, one batch at a time so batches and their
    checkpoints land in order: SQLite releases the GIL while it works, so the two overlap.
    """
    checkpoint = await asyncio.to_thread(_load_checkpoint, engine, connector.name, stream.name)
    pending: list[Page] = []
    records = 0
    writing: asyncio.Task[None] | None = None
    try:
        async for page in stream.read(checkpoint, started):
            pending.append(page)
            records += len(page.records)
            if records >= BATCH_RECORDS:
                batch, pending, records = pending, [], 0
                if writing is not None:
                    await writing  # a failed write ends the pull here, this batch unwritten
                writing = asyncio.create_task(
                    _write_batch(connector.name, stream.name, batch, engine, policy, report, lease)
                )
    finally:
        if writing is not None:
            await writing
        if pending:
            await _write_batch(connector.name, stream.name, pending, engine, policy, report, lease)


async def _write_batch(
    connector: str,
    stream: str,
    pages: list[Page],
    engine: Engine,
    policy: IngestPolicy,
    report: StreamReport,
    lease: Lease | None,
) -> None:
    written = await asyncio.to_thread(store_pages, engine, connector, stream, pages, policy)
    report.pulled += written.written
    report.unchanged += written.unchanged
    report.pages += len(pages)
    for reason, count in (("erased person", written.erased), *written.rejected.items()):
        if count:
            report.skipped += count
            report.skip_reasons[reason] = report.skip_reasons.get(reason, 0) + count
    skipped_records = [*(s for p in pages for s in p.skipped), *written.unstorable]
    for skipped in skipped_records:
        report.skipped += 1
        report.skip_reasons[skipped.reason] = report.skip_reasons.get(skipped.reason, 0) + 1
        log.warning(
            "event=record_skipped connector=%s stream=%s vendor_id=%s reason=%s",
            connector,
            stream,
            skipped.vendor_id,
            skipped.reason,
        )
    log.info(
        "event=pages_pulled connector=%s stream=%s pages=%d n=%d skipped=%d",
        connector,
        stream,
        len(pages),
        sum(len(p.records) for p in pages),
        len(skipped_records),
    )
    if lease is not None and lease.lost:  # the pages just written are idempotent upserts: harmless
        raise LeaseLost(f"{connector}/{stream}: lease lost to another espd; stopped pulling")


async def pull_connector(
    connector: Connector, engine: Engine, policy: IngestPolicy, started: datetime, leases: LeaseBook
) -> list[StreamReport]:
    """Pull every stream of one connector; failed credentials stop the connector's remaining streams."""
    reports = []
    for stream in connector.streams():
        async with leases.hold(pull_key(connector.name, stream.name)) as lease:
            if lease is None:
                reports.append(StreamReport(connector.name, stream.name, held_elsewhere=True))
                continue
            report = await pull_stream(connector, stream, engine, policy, started, lease)
        reports.append(report)
        if report.auth_failed:
            break
    return reports


async def pull_all(
    connectors: Sequence[Connector],
    engine: Engine,
    policy: IngestPolicy,
    started: datetime,
    leases: LeaseBook | None = None,
) -> list[StreamReport]:
    """Pull every connector concurrently; `leases` default to this process's, with the default TTL."""
    book = leases or LeaseBook(engine)
    results = await asyncio.gather(*(pull_connector(c, engine, policy, started, book) for c in connectors))
    return [report for reports in results for report in reports]
