"""One contract suite, run against every connector over real HTTP to its simulator.

Adapters in tests/connectors/adapters/ say how to build and inspect each vendor's simulator; the
tests themselves are the same for all: pull from empty, incremental pull, updates during paging,
resume after a kill, 429 storms, revoked credentials, malformed records, field creation, pushes
with a rejected record, consent never touched, dry runs that write nothing.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from connectors.base import Connector, FieldUpdate
from simulators import shops
from simulators.dataset import ShopData
from simulators.harness import Faults, Limits, Simulator, SimulatorServer
from sync import tables
from sync.ingest import IngestPolicy, write_page
from sync.pull import StreamReport, pull_all
from sync.store import migrate, open_engine, session_scope
from tests.connectors import adapters
from tests.connectors.contract import CONTRACT_FIELDS, VendorAdapter

ADAPTERS: list[VendorAdapter] = [
    importlib.import_module(f"{adapters.__name__}.{info.name}").ADAPTER
    for info in pkgutil.iter_modules(adapters.__path__)
]


@pytest.fixture(scope="module")
def shop() -> ShopData:
    return shops.generate(600, seed=11)


@pytest.fixture(params=ADAPTERS, ids=lambda a: a.vendor)
def adapter(request: pytest.FixtureRequest) -> VendorAdapter:
    return request.param


class Env:
    def __init__(self, adapter: VendorAdapter, shop: ShopData, engine: Engine) -> None:
        self.adapter = adapter
        self.faults = Faults()
        self.sim: Simulator = adapter.simulator(shop, self.faults, Limits())
        self.server: SimulatorServer = self.sim.serve()
        self.engine = engine

    @property
    def url(self) -> str:
        return self.sim.base_url(self.server)

    def connector(self, *, dry_run: bool = False, streams: Sequence[str] | None = None) -> Connector:
        chosen = streams if streams is not None else [self.adapter.profile_stream]
        return self.adapter.connector(self.sim, self.url, streams=chosen, dry_run=dry_run)

    def pull(self, connector: Connector | None = None) -> list[StreamReport]:
        async def run() -> list[StreamReport]:
            chosen = connector or self.connector()
            async with chosen:
                return await pull_all([chosen], self.engine, _policy(), datetime.now(UTC))

        return asyncio.run(run())

    def stored(self) -> dict[str, datetime | None]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(tables.Identity.vendor_id, tables.Identity.vendor_updated_at).where(
                    tables.Identity.source == self.adapter.vendor
                )
            )
            return dict(rows.all())


def _policy() -> IngestPolicy:
    return IngestPolicy(raw_retention=timedelta(days=1), now=datetime.now(UTC))


@pytest.fixture
def env(adapter: VendorAdapter, shop: ShopData, tmp_path: Path) -> Iterator[Env]:
    engine = open_engine(f"sqlite:///{tmp_path / 'espd.sqlite'}")
    migrate(engine)
    environment = Env(adapter, shop, engine)
    yield environment
    environment.server.stop()
    engine.dispose()


def test_full_pull_from_empty_stores_everyone(env: Env) -> None:
    reports = env.pull()
    assert [r.error for r in reports] == [None]
    people = env.adapter.people(env.sim)
    assert len(people) > 100
    assert set(env.stored()) == set(people.values())
    with Session(env.engine) as session:
        emails = set(session.execute(select(tables.Profile.email)).scalars())
    assert set(people) <= emails


def test_incremental_pull_sees_only_changes(env: Env) -> None:
    env.pull()
    touched = sorted(env.adapter.people(env.sim).values())[:3]
    for vendor_id in touched:
        env.adapter.touch(env.sim, vendor_id)
    before = datetime.now(UTC)
    report = env.pull()[0]
    assert report.error is None
    assert 3 <= report.pulled <= 10, report
    with Session(env.engine) as session:
        fresh = session.execute(
            select(tables.Identity.vendor_id).where(
                tables.Identity.source == env.adapter.vendor, tables.Identity.pulled_at >= before
            )
        ).scalars()
        assert set(touched) <= set(fresh)
    stored = env.stored()
    for vendor_id in touched:
        assert stored[vendor_id] == env.adapter.updated_at(env.sim, vendor_id)


def test_records_updated_while_paging_are_not_missed(env: Env) -> None:
    env.faults.update_while_paging = 3
    env.pull()
    env.faults.update_while_paging = 0
    env.pull()
    stored = env.stored()
    people = env.adapter.people(env.sim)
    assert set(stored) == set(people.values())
    stale = [v for v in people.values() if stored[v] != env.adapter.updated_at(env.sim, v)]
    assert stale == []


def test_interrupted_stream_resumes_from_its_checkpoint(env: Env) -> None:
    async def first_page_then_die() -> int:
        connector = env.connector()
        async with connector:
            stream = connector.streams()[0]
            pages = stream.read(None, datetime.now(UTC))
            page = await anext(pages)
            with session_scope(env.engine) as session:
                write_page(session, connector.name, stream.name, page, _policy())
            await pages.aclose()  # the process dies here: nothing after page one is written
            return len(page.records)

    first = asyncio.run(first_page_then_die())
    people = env.adapter.people(env.sim)
    assert 0 < first < len(people), "the shop must span several pages"
    report = env.pull()[0]
    assert set(env.stored()) == set(people.values())
    assert report.pulled < len(people)  # resumed, not restarted


def test_429_storm_is_obeyed(env: Env) -> None:
    env.faults.error_status, env.faults.error_burst, env.faults.retry_after_seconds = 429, 4, 1
    reports = env.pull()
    assert reports[0].error is None
    entries = sorted(env.sim.log.entries(), key=lambda e: e.started)
    minimum = 1.0 if env.adapter.honours_retry_after else 0.5
    for throttled in (e for e in entries if e.status == 429):
        too_soon = [
            e for e in entries if throttled.finished < e.started < throttled.finished + minimum - 0.01
        ]
        assert too_soon == [], f"request sent {too_soon[0].started - throttled.finished:.2f}s after a 429"
    assert set(env.stored()) == set(env.adapter.people(env.sim).values())


def test_revoked_credentials_stop_that_connector_and_others_go_on(
    env: Env, adapter: VendorAdapter, shop: ShopData
) -> None:
    healthy = Env(adapter, shop, env.engine)
    try:
        env.faults.auth_fail_after = 0
        bad = env.connector()
        good = healthy.connector()

        async def run() -> list[StreamReport]:
            async with bad, good:
                return await pull_all([bad, good], env.engine, _policy(), datetime.now(UTC))

        bad_report, good_report = asyncio.run(run())
        assert bad_report.auth_failed and bad_report.error and "auth" in bad_report.error.lower()
        assert good_report.error is None and good_report.pulled == len(adapter.people(healthy.sim))
    finally:
        healthy.server.stop()


def test_malformed_records_are_counted_and_the_rest_stored(env: Env) -> None:
    env.faults.malformed_every = 7
    report = env.pull()[0]
    assert report.error is None
    assert report.skipped > 0
    people = env.adapter.people(env.sim)
    assert len(env.stored()) + report.skipped >= len(people)
    assert len(env.stored()) >= len(people) * 0.8


def _updates(env: Env, n: int) -> list[FieldUpdate]:
    people = sorted(env.adapter.people(env.sim).items())[:n]
    return [
        FieldUpdate(
            destination=env.adapter.vendor,
            customer_vendor_id=vendor_id,
            email=email,
            values={
                "espd_churn_risk": round(0.01 * i, 2),
                "espd_next_order": "2026-12-24",
                "espd_segment": "at_risk",
            },
        )
        for i, (email, vendor_id) in enumerate(people)
    ]


def test_fields_are_created_once_and_pushed_values_land(env: Env) -> None:
    updates = _updates(env, 12)

    async def run() -> tuple[tuple[str, ...], tuple[str, ...], list[bool]]:
        connector = env.connector()
        async with connector:
            target = connector.push_target()
            assert target is not None
            first = await target.ensure_fields(CONTRACT_FIELDS)
            second = await target.ensure_fields(CONTRACT_FIELDS)
            results = await target.push(updates)
            return first.created, second.created, [r.ok for r in results]

    created_first, created_second, ok = asyncio.run(run())
    assert created_second == ()
    assert all(ok)
    for update in updates:
        stored = env.adapter.stored_values(env.sim, update.customer_vendor_id)
        assert stored["espd_churn_risk"] == pytest.approx(update.values["espd_churn_risk"])
        assert str(stored["espd_next_order"])[:10] == "2026-12-24"
        assert stored["espd_segment"] == "at_risk"
    assert env.adapter.consent_changes(env.sim.log.entries()) == []
    assert created_first or env.adapter.vendor == "klaviyo"  # Klaviyo needs no definitions


def test_a_rejected_record_does_not_stop_the_rest_of_its_batch(env: Env) -> None:
    updates = _updates(env, 10)
    bad = updates[4]
    env.faults.reject_records = {env.adapter.reject_key(bad.customer_vendor_id, bad.email or "")}

    async def run() -> list[bool]:
        connector = env.connector()
        async with connector:
            target = connector.push_target()
            assert target is not None
            await target.ensure_fields(CONTRACT_FIELDS)
            return [r.ok for r in await target.push(updates)]

    ok = asyncio.run(run())
    assert ok == [i != 4 for i in range(10)]
    for i, update in enumerate(updates):
        stored = env.adapter.stored_values(env.sim, update.customer_vendor_id)
        assert (stored.get("espd_segment") == "at_risk") == (i != 4)


def test_dry_run_sends_no_write(env: Env) -> None:
    async def run() -> int:
        connector = env.connector(dry_run=True)
        async with connector:
            target = connector.push_target()
            assert target is not None
            await target.ensure_fields(CONTRACT_FIELDS)
            return sum(r.ok for r in await target.push(_updates(env, 5)))

    assert asyncio.run(run()) == 5
    assert env.adapter.writes(env.sim.log.entries()) == []
    with Session(env.engine) as session:
        assert session.execute(select(func.count()).select_from(tables.PushLedger)).scalar_one() == 0
