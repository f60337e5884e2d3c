"""Pull throughput into the SQLite store with the simulators' rate limits switched off.

    .venv/bin/python bench/pull_throughput.py [--people 10000] [--seed 7]

Issue 10 defines the figure as parse + validate + upsert with the simulators' limits off; the
connectors' own request windows are switched off too (option `client_limits: false`): at the
documented windows Brevo's `GET /orders` (100 requests per hour) alone waits an hour from 10,000 people.
The simulators run in this process (threads), so pulling from them also times their serving,
which is not espd's. Hence three figures per stream, each from an empty store:

- end to end (`per_s`, `per_cpu_s`): `sync.pull.pull_stream` against the simulators (HTTP, parse,
  validate, identity resolution, upsert), one stream at a time; every HTTP exchange is recorded
  (status, headers and the body's bytes as they came off the socket);
- espd only (`espd_per_s`, `espd_per_cpu_s`): the same `pull_stream` with the same connector code,
  after the simulators have stopped, its httpx client served the recorded bytes by a replaying
  transport: request building, decoding, JSON + pydantic parsing, validation and the store's upsert
  all run; only the vendor's serving is gone. The goals are read against this figure;
- ingest alone (`ingest_only_per_s`, `ingest_only_per_cpu_s`): the end-to-end run's pages replayed
  through `sync.pull.store_pages`, batched as the pull stage batches them: the store's share.

`peak_rss_mb` is the process's peak memory, simulators and the recorded exchanges included.
Goals (issue 10): >= 20,000 profiles/s and >= 50,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from benchlib import emit, peak_rss_mb, served_simulators

from connectors.base import Checkpoint, Connector, Page, PullStream, connector_class
from simulators import shops
from simulators.harness import Limits
from sync.config import ConnectorConfig
from sync.ingest import IngestPolicy
from sync.pull import BATCH_RECORDS, pull_stream, store_pages
from sync.store import migrate, open_engine
from sync.wiring import connector_settings

KINDS = {
    "profiles": "profiles",
    "members": "profiles",
    "contacts": "profiles",
    "customers": "profiles",
    "events": "events",
    "email_activity": "events",
    "orders": "orders",
}
GOALS = {"profiles": 20_000, "events": 50_000}
Key = tuple[str, str, bytes]  # method, URL, request body
Exchange = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, raw headers, raw body
Tape = dict[Key, list[Exchange]]


class Recorded(PullStream):
    """A stream that keeps every page it passes on, to replay them into the store alone."""

    def __init__(self, inner: PullStream, pages: list[Page]) -> None:
        self.inner, self.pages = inner, pages
        self.name = inner.name  # type: ignore[misc]

    async def read(self, checkpoint: Checkpoint | None, sync_started_at: datetime) -> AsyncIterator[Page]:
        async for page in self.inner.read(checkpoint, sync_started_at):
            self.pages.append(page)
            yield page


async def _key(request: httpx.Request) -> Key:
    return request.method, str(request.url), await request.aread()


class Recording(httpx.AsyncBaseTransport):
    """Sends over the network and keeps each exchange's bytes on `tape` (encoded as received)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, tape: Tape) -> None:
        self.inner, self.tape = inner, tape

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = await _key(request)
        response = await self.inner.handle_async_request(request)
        try:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        self.tape.setdefault(key, []).append((response.status_code, response.headers.raw, body))
        return httpx.Response(
            response.status_code, headers=response.headers.raw, stream=httpx.ByteStream(body)
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class Replay(httpx.AsyncBaseTransport):
    """Answers each request with the next exchange recorded for the same method, URL and body."""

    def __init__(self, tape: Tape) -> None:
        self.queues = {key: deque(exchanges) for key, exchanges in tape.items()}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        queue = self.queues.get(await _key(request))
        if not queue:
            raise RuntimeError(f"replay: nothing recorded (or left) for {request.method} {request.url}")
        status, headers, body = queue.popleft()
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))


@contextmanager
def transported(make: Callable[[dict[str, Any]], httpx.AsyncBaseTransport]) -> Iterator[None]:
    """Every `httpx.AsyncClient` built inside gets `make(its keyword arguments)` as its transport.

    The connectors build their client in `connectors.http.HttpClient`, which takes no transport; this
    bench-only hook is how the recorded bytes reach the unchanged connector code.
    """
    original = httpx.AsyncClient.__init__

    def init(client: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        original(client, *args, transport=make(kwargs), **kwargs)

    httpx.AsyncClient.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        httpx.AsyncClient.__init__ = original  # type: ignore[method-assign]


def unlimited_connector(name: str, config: ConnectorConfig) -> Connector:
    """The connector `sync.wiring.build_connector` builds, with its client-side rate windows off
    (`client_limits: false`), as `Limits(enabled=False)` switches off the simulators': the figure
    is espd's throughput, not the vendors' documented request budgets."""
    settings = connector_settings(name, config)
    options = {**settings.options, "client_limits": False}
    return connector_class(config.type)(dataclasses.replace(settings, options=options))


def _store(url: str) -> Any:
    engine = open_engine(url)
    migrate(engine)
    return engine


async def _timed_pull(
    connector: Any, stream: PullStream, engine: Any, policy: IngestPolicy
) -> tuple[int, float, float]:
    """(records written, wall seconds, CPU seconds) of one `pull_stream` from empty."""
    started, cpu = time.perf_counter(), time.process_time()
    report = await pull_stream(connector, stream, engine, policy, policy.now)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if report.error:
        raise RuntimeError(f"{connector.name}.{stream.name} failed: {report.error}")
    return report.pulled, seconds, cpu


async def pull_end_to_end(
    config: Any, policy: IngestPolicy, store_url: str, ingest_url: str, tapes: dict[str, Tape]
) -> list[dict[str, Any]]:
    """Pull each stream alone from the simulators, recording its HTTP exchanges into `tapes` (one per
    connector), then replay its pages into the ingest-only store; return per-stream rows.

    A stream's pages are dropped once replayed: holding every stream's pages (raw JSON included) until
    the end is what took 3.2 GB at 10,000 people.
    """
    engine, ingest_engine = _store(store_url), _store(ingest_url)
    rows = []
    for name, settings in config.connectors.items():
        if not settings.enabled:
            continue
        tape = tapes.setdefault(name, {})
        network = transported(
            lambda kw, tape=tape: Recording(httpx.AsyncHTTPTransport(limits=kw["limits"]), tape)
        )
        with network:
            connector = unlimited_connector(name, settings)  # its HTTP client is built here
        async with connector:
            for stream in connector.streams():
                pages: list[Page] = []
                records, seconds, cpu = await _timed_pull(connector, Recorded(stream, pages), engine, policy)
                rows.append(
                    {
                        "stream": f"{name}.{stream.name}",
                        "kind": KINDS[stream.name],
                        "records": records,
                        "seconds": seconds,
                        "cpu_seconds": cpu,
                    }
                )
                rows[-1]["ingest_seconds"], rows[-1]["ingest_cpu_seconds"] = ingest_alone(
                    ingest_engine, name, stream.name, pages, policy
                )
    engine.dispose()
    ingest_engine.dispose()
    return rows


async def pull_replayed(
    config: Any, policy: IngestPolicy, store_url: str, tapes: dict[str, Tape], rows: list[dict[str, Any]]
) -> None:
    """Pull every stream again, from an empty store, with each connector served its recorded bytes;
    add espd's own seconds to `rows` (and check that the same records were written)."""
    engine = _store(store_url)
    by_stream = {r["stream"]: r for r in rows}
    for name, tape in tapes.items():
        with transported(lambda _kw, tape=tape: Replay(tape)):
            connector = unlimited_connector(name, config.connectors[name])  # its HTTP client is built here
        async with connector:
            for stream in connector.streams():
                records, seconds, cpu = await _timed_pull(connector, stream, engine, policy)
                row = by_stream[f"{name}.{stream.name}"]
                if records != row["records"]:
                    raise RuntimeError(
                        f"{row['stream']}: replay wrote {records} records, the pull {row['records']}"
                    )
                row.update(espd_seconds=seconds, espd_cpu_seconds=cpu)
        tape.clear()
    engine.dispose()


def ingest_alone(
    engine: Any, connector: str, stream: str, pages: list[Page], policy: IngestPolicy
) -> tuple[float, float]:
    """(wall, CPU) seconds to replay one stream's recorded pages into the empty ingest-only store,
    batched as the pull stage batches them (about `BATCH_RECORDS` records per transaction)."""
    started, cpu = time.perf_counter(), time.process_time()
    batch: list[Page] = []
    for page in pages:
        batch.append(page)
        if sum(len(p.records) for p in batch) >= BATCH_RECORDS:
            store_pages(engine, connector, stream, batch, policy)
            batch = []
    if batch:
        store_pages(engine, connector, stream, batch, policy)
    return time.perf_counter() - started, time.process_time() - cpu


def _per(records: int, seconds: float) -> int | None:
    return round(records / seconds) if seconds else None


def rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for kind in ("profiles", "events", "orders"):
        chosen = [r for r in rows if r["kind"] == kind]
        records = sum(r["records"] for r in chosen)
        total = {
            k: sum(r[k] for r in chosen)
            for k in (
                "seconds",
                "cpu_seconds",
                "espd_seconds",
                "espd_cpu_seconds",
                "ingest_seconds",
                "ingest_cpu_seconds",
            )
        }
        result[kind] = {
            "records": records,
            "espd_per_s": _per(records, total["espd_seconds"]),
            "espd_per_cpu_s": _per(records, total["espd_cpu_seconds"]),
            "per_s": _per(records, total["seconds"]),
            "per_cpu_s": _per(records, total["cpu_seconds"]),
            "ingest_only_per_s": _per(records, total["ingest_seconds"]),
            "ingest_only_per_cpu_s": _per(records, total["ingest_cpu_seconds"]),
            "goal_per_s": GOALS.get(kind),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000, help="synthetic shop size")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    shop = shops.generate(args.people, seed=args.seed)
    policy = IngestPolicy(raw_retention=timedelta(days=30), now=datetime.now(UTC))
    tapes: dict[str, Tape] = {}
    with tempfile.TemporaryDirectory(prefix="espd-bench-pull-") as tmp:
        with served_simulators(shop, Path(tmp), Limits(enabled=False)) as (config, _):
            rows = asyncio.run(
                pull_end_to_end(config, policy, config.store_url, f"sqlite:///{tmp}/ingest_only.db", tapes)
            )
        asyncio.run(pull_replayed(config, policy, f"sqlite:///{tmp}/espd_only.db", tapes, rows))
    by_kind = rates(rows)
    streams = [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    met = all(by_kind[k]["espd_per_s"] >= goal for k, goal in GOALS.items())
    summary = [
        f"{r['stream']:>26}: {r['records']:>8} records  {r['records'] / r['espd_seconds']:>9,.0f}/s espd only"
        f"  {r['records'] / r['seconds']:>9,.0f}/s end to end"
        f"  {r['records'] / r['ingest_seconds']:>9,.0f}/s ingest alone"
        for r in rows
    ]
    summary += [
        f"{kind}: {v['espd_per_s']:,}/s espd only, parse + validate + upsert ({v['espd_per_cpu_s']:,}/CPU-s; "
        f"goal {v['goal_per_s']}); {v['per_s']:,}/s end to end with the simulators serving "
        f"({v['per_cpu_s']:,}/CPU-s); {v['ingest_only_per_s']:,}/s ingest alone "
        f"({v['ingest_only_per_cpu_s']:,}/CPU-s)"
        for kind, v in by_kind.items()
    ]
    emit(
        "pull_throughput",
        {
            "people": args.people,
            "goals_met": met,
            "peak_rss_mb": peak_rss_mb(),
            **by_kind,
            "streams": streams,
            "command": f"bench/pull_throughput.py --people {args.people} --seed {args.seed}",
        },
        summary,
    )


if __name__ == "__main__":
    main()
