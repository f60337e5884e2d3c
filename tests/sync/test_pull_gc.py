"""The pull stage raises the collector's young-generation threshold while streams are pulled, and
puts the operator's setting back once the last concurrent pull ends (even one that failed)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from connectors.base import Checkpoint, Connector, Page, PullStream
from simulators import shops
from simulators.harness import Faults, Limits
from sync.ingest import IngestPolicy
from sync.pull import PULL_GC_THRESHOLD, pull_stream
from tests.connectors.adapters.klaviyo import ADAPTER as KLAVIYO

POLICY = IngestPolicy(raw_retention=timedelta(days=30), now=datetime.now(UTC))


class Observed(PullStream):
    """A real stream whose pages note the threshold in force; `gate` holds the pull open at its end."""

    def __init__(self, inner: PullStream, seen: list[int], gate: asyncio.Event | None = None) -> None:
        self.inner, self.seen, self.gate = inner, seen, gate
        self.name = inner.name  # type: ignore[misc]

    async def read(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> AsyncIterator[Page]:
        async for page in self.inner.read(checkpoint, sync_started_at):
            self.seen.append(gc.get_threshold()[0])
            yield page
        if self.gate is not None:
            await self.gate.wait()
        self.seen.append(gc.get_threshold()[0])


@pytest.fixture
def klaviyo() -> Iterator[Connector]:
    sim = KLAVIYO.simulator(shops.generate(40, seed=5), Faults(), Limits())
    server = sim.serve()
    try:
        yield KLAVIYO.connector(sim, sim.base_url(server), streams=["profiles", "events"])
    finally:
        server.stop()


@pytest.fixture
def operator_threshold() -> Iterator[tuple[int, int, int]]:
    """An operator's own setting, distinct from both Python's default and the pull's."""
    saved = gc.get_threshold()
    gc.set_threshold(900, 11, 12)
    yield gc.get_threshold()
    gc.set_threshold(*saved)


def test_overlapping_pulls_keep_the_raised_threshold_until_the_last_one_ends(
    klaviyo: Connector, store_engine: Engine, operator_threshold: tuple[int, int, int]
) -> None:
    profiles, events = klaviyo.streams()
    long_seen: list[int] = []
    short_seen: list[int] = []

    async def run() -> None:
        gate = asyncio.Event()
        held = asyncio.create_task(
            pull_stream(klaviyo, Observed(profiles, long_seen, gate), store_engine, POLICY, POLICY.now)
        )
        short = await pull_stream(klaviyo, Observed(events, short_seen), store_engine, POLICY, POLICY.now)
        assert short.error is None and short.pulled > 0
        gate.set()  # the long pull now ends after the short one has
        assert (await held).error is None
        await klaviyo.aclose()

    asyncio.run(run())
    assert short_seen and set(short_seen) == {PULL_GC_THRESHOLD}
    assert long_seen and set(long_seen) == {PULL_GC_THRESHOLD}  # its last note came after the short ended
    assert gc.get_threshold() == operator_threshold


def test_a_failed_pull_restores_the_threshold(
    klaviyo: Connector, store_engine: Engine, operator_threshold: tuple[int, int, int]
) -> None:
    class Broken(PullStream):
        name = "profiles"  # type: ignore[misc]

        async def read(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> AsyncIterator[Page]:
            assert gc.get_threshold()[0] == PULL_GC_THRESHOLD
            raise RuntimeError("stream broke")
            yield  # an async generator

    with pytest.raises(RuntimeError, match="stream broke"):
        asyncio.run(pull_stream(klaviyo, Broken(), store_engine, POLICY, POLICY.now))
    assert gc.get_threshold() == operator_threshold
