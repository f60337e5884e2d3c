"""The pull stage: every enabled stream of every connector, page by page, into the store.

Connectors pull concurrently (each within its own rate limits); the streams of one connector run one
after the other so they share its quota fairly. Each page is written with its checkpoint in one
transaction, on a worker thread so the event loop keeps the other connectors' requests moving.
A connector whose credentials fail stops with a clear message while the others go on; a stream that
fails keeps the checkpoint of its last good page, so the next run resumes there.
Each stream is pulled under a lease (sync/leases.py): a stream another espd is pulling is left to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
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


@dataclass
class StreamReport:
    connector: str
    stream: str
    pulled: int = 0
    skipped: int = 0
    pages: int = 0
    error: str | None = None
    auth_failed: bool = False
    held_elsewhere: bool = False  # another espd process held the stream's lease: not pulled here
    skip_reasons: dict[str, int] = field(default_factory=dict)


def _load_checkpoint(engine: Engine, connector: str, stream: str) -> dict | None:
    with Session(engine) as session:
        state = session.get(tables.SyncState, (connector, stream))
        return state.cursor if state is not None else None


def _store_page(engine: Engine, connector: str, stream: str, page: Page, policy: IngestPolicy) -> PageWrite:
    with session_scope(engine) as session:
        return write_page(session, connector, stream, page, policy)


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
    checkpoint = await asyncio.to_thread(_load_checkpoint, engine, connector.name, stream.name)
    async for page in stream.read(checkpoint, started):
        written = await asyncio.to_thread(_store_page, engine, connector.name, stream.name, page, policy)
        report.pulled += written.written
        report.pages += 1
        if written.erased:
            report.skipped += written.erased
            report.skip_reasons["erased person"] = (
                report.skip_reasons.get("erased person", 0) + written.erased
            )
        for skipped in (*page.skipped, *written.unstorable):
            report.skipped += 1
            report.skip_reasons[skipped.reason] = report.skip_reasons.get(skipped.reason, 0) + 1
            log.warning(
                "event=record_skipped connector=%s stream=%s vendor_id=%s reason=%s",
                connector.name,
                stream.name,
                skipped.vendor_id,
                skipped.reason,
            )
        log.info(
            "event=page_pulled connector=%s stream=%s n=%d skipped=%d",
            connector.name,
            stream.name,
            len(page.records),
            len(page.skipped) + len(written.unstorable),
        )
        if lease is not None and lease.lost:  # the page just written is an idempotent upsert: harmless
            raise LeaseLost(f"{connector.name}/{stream.name}: lease lost to another espd; stopped pulling")


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
