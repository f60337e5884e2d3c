"""Pull batches are written while the next ones are read: still in order, every page read before an
API error written, and the stored checkpoint that of the last page read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from connectors.base import Checkpoint, Connector, Page, PullStream
from connectors.http import Outcome, RetryableError, Verdict
from simulators import shops
from simulators.harness import Faults, Limits
from sync import pull, tables
from sync.ingest import IngestPolicy
from tests.connectors.adapters.klaviyo import ADAPTER as KLAVIYO

POLICY = IngestPolicy(raw_retention=timedelta(days=30), now=datetime.now(UTC))


class FailsAfter(PullStream):
    """A real stream cut by an API error after `pages` pages; keeps the pages it passed on."""

    def __init__(self, inner: PullStream, pages: int) -> None:
        self.inner, self.left, self.passed = inner, pages, list[Page]()
        self.name = inner.name  # type: ignore[misc]

    async def read(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> AsyncIterator[Page]:
        async for page in self.inner.read(checkpoint, sync_started_at):
            if not self.left:
                raise RetryableError("klaviyo", Verdict(Outcome.RETRY, None, "vendor went away"))
            self.left -= 1
            self.passed.append(page)
            yield page


@pytest.fixture
def klaviyo() -> Iterator[Connector]:
    sim = KLAVIYO.simulator(shops.generate(60, seed=3), Faults(), Limits())
    server = sim.serve()
    try:
        yield KLAVIYO.connector(sim, sim.base_url(server), streams=["events"])
    finally:
        server.stop()


def test_pages_read_before_an_api_error_are_all_written_with_the_last_checkpoint(
    klaviyo: Connector, store_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pull, "BATCH_RECORDS", 30)  # several batches, each written while one is read
    (events,) = klaviyo.streams()
    stream = FailsAfter(events, pages=7)

    async def run() -> pull.StreamReport:
        try:
            return await pull.pull_stream(klaviyo, stream, store_engine, POLICY, POLICY.now)
        finally:
            await klaviyo.aclose()

    report = asyncio.run(run())
    assert report.error is not None and "vendor went away" in report.error
    read = sum(len(p.records) for p in stream.passed)
    assert len(stream.passed) == 7 and sum(1 for p in stream.passed if p.records) >= 3
    assert report.pulled == read and report.pages == 7
    with Session(store_engine) as session:
        state = session.get(tables.SyncState, (klaviyo.name, "events"))
        stored = session.scalar(select(func.count()).select_from(tables.Event))
        orders = session.scalar(select(func.count()).select_from(tables.Order))
    assert state is not None and state.cursor == stream.passed[-1].checkpoint
    assert stored + orders == read
