"""Work leases: one holder per stream, across real processes on the real PostgreSQL server.

The API tests run on both backends; the two-process tests need PostgreSQL's row locks and clock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text, update

from connectors.base import Connector
from simulators import shops
from simulators.harness import Faults, Limits
from sync import tables
from sync.ingest import IngestPolicy
from sync.leases import LeaseBook, daemon_owner, pull_key, push_key
from sync.pull import StreamReport, pull_all
from sync.push import PushReport, push_destination
from sync.store import row_counts, session_scope
from tests.connectors.adapters.klaviyo import ADAPTER as KLAVIYO

REPO = Path(__file__).resolve().parents[2]
KEY = "shop/orders:pull"


def _expire(engine: Engine, key: str) -> None:
    """What the passing of a TTL does, without waiting for it."""
    with session_scope(engine) as session:
        session.execute(
            update(tables.WorkLease)
            .where(tables.WorkLease.key == key)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_a_held_lease_is_refused_to_others_until_released(store_engine: Engine) -> None:
    first, second = LeaseBook(store_engine, "a"), LeaseBook(store_engine, "b")
    lease = first.claim(KEY)
    assert lease is not None and lease.owner == "a"
    assert second.claim(KEY) is None
    assert first.claim(KEY) is not None, "a holder may claim its own lease again"
    assert second.claim("shop/events:pull") is not None, "other streams stay free"
    first.release(lease)
    assert second.claim(KEY) is not None


def test_an_expired_lease_is_taken_over_and_the_stalled_holder_learns_it(store_engine: Engine) -> None:
    stalled, successor = LeaseBook(store_engine, "stalled"), LeaseBook(store_engine, "successor")
    old = stalled.claim(KEY)
    assert old is not None and successor.claim(KEY) is None
    _expire(store_engine, KEY)
    assert successor.claim(KEY) is not None
    assert not stalled.renew(old) and old.lost
    stalled.release(old)  # must not free what is now the successor's
    assert LeaseBook(store_engine, "third").claim(KEY) is None


def test_renewal_keeps_a_lease_past_its_ttl(store_engine: Engine) -> None:
    book = LeaseBook(store_engine, "a", ttl=timedelta(seconds=30))
    lease = book.claim(KEY)
    assert lease is not None
    before = lease.expires_at
    assert book.renew(lease) and lease.expires_at >= before and not lease.lost


@pytest.fixture
def klaviyo_connector() -> Iterator[Connector]:
    sim = KLAVIYO.simulator(shops.generate(40, seed=5), Faults(), Limits())
    server = sim.serve()
    try:
        yield KLAVIYO.connector(sim, sim.base_url(server), streams=[KLAVIYO.profile_stream])
    finally:
        server.stop()


def test_pull_and_push_leave_work_held_by_another_daemon(
    store_engine: Engine, klaviyo_connector: Connector
) -> None:
    other, mine = LeaseBook(store_engine, "other-daemon"), LeaseBook(store_engine, "this-daemon")
    stream_key = pull_key(klaviyo_connector.name, KLAVIYO.profile_stream)
    held = other.claim(stream_key)
    assert held is not None and other.claim(push_key(klaviyo_connector.name)) is not None
    policy = IngestPolicy(raw_retention=timedelta(days=1), now=datetime.now(UTC))

    async def run() -> tuple[list[StreamReport], PushReport, list[StreamReport]]:
        async with klaviyo_connector:
            refused = await pull_all([klaviyo_connector], store_engine, policy, policy.now, mine)
            push = await push_destination(
                klaviyo_connector, store_engine, lambda _pid: {}, [], [], policy.now, leases=mine
            )
            assert row_counts(store_engine)["identities"] == 0
            other.release(held)
            pulled = await pull_all([klaviyo_connector], store_engine, policy, policy.now, mine)
            return refused, push, pulled

    refused, push, pulled = asyncio.run(run())
    assert [(r.held_elsewhere, r.pulled) for r in refused] == [(True, 0)]
    assert push.held_elsewhere
    [report] = pulled
    assert not report.held_elsewhere and report.pulled > 0 and report.error is None
    assert other.claim(stream_key) is not None, "the pull released its lease when it finished"


def _worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sync.lease_worker", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


ON_POSTGRES = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


@ON_POSTGRES
def test_two_processes_never_hold_one_stream_at_once(
    store_url: str, store_engine: Engine, tmp_path: Path
) -> None:
    with store_engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE lease_intervals (id serial PRIMARY KEY, key text NOT NULL, owner text NOT NULL,"
                " started timestamptz NOT NULL, ended timestamptz)"
            )
        )
    go = tmp_path / "go"
    keys = "shop/orders:pull,shop/events:pull"
    workers = [_worker("contend", store_url, f"daemon-{i}", keys, "40", str(i), str(go)) for i in (1, 2)]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert all(w.returncode == 0 for w in workers), outputs
    results = [dict(p.split("=") for p in out.split()[1:]) for out in outputs]
    assert all(int(r["won"]) > 0 for r in results), results
    assert sum(int(r["refused"]) for r in results) > 0, f"the processes never contended: {results}"
    with store_engine.connect() as connection:
        unfinished = connection.execute(text("SELECT count(*) FROM lease_intervals WHERE ended IS NULL"))
        assert unfinished.scalar_one() == 0
        overlaps = connection.execute(
            text(
                "SELECT a.key, a.owner, b.owner FROM lease_intervals a JOIN lease_intervals b"
                " ON a.key = b.key AND a.owner < b.owner AND a.started < b.ended AND b.started < a.ended"
            )
        ).all()
        held = connection.execute(text("SELECT count(*) FROM lease_intervals")).scalar_one()
    assert overlaps == [], f"{len(overlaps)} overlapping holds, e.g. {overlaps[:3]}"
    assert held == sum(int(r["won"]) for r in results)


@ON_POSTGRES
def test_a_killed_holders_stream_is_taken_over_after_its_ttl(store_url: str, store_engine: Engine) -> None:
    ttl = 3.0
    holder = _worker("hold", store_url, "doomed", KEY, str(ttl))
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().startswith("held ")
        successor = LeaseBook(store_engine, "successor", ttl=timedelta(seconds=ttl))
        time.sleep(ttl * 1.5)  # past the first expiry: only the holder's renewals keep it
        assert successor.claim(KEY) is None, "a live holder's renewed lease must not be taken"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        with store_engine.connect() as connection:
            expires = connection.execute(
                text("SELECT expires_at FROM work_leases WHERE key = :key"), {"key": KEY}
            ).scalar_one()
        deadline = time.monotonic() + 60
        lease = successor.claim(KEY)
        while lease is None and time.monotonic() < deadline:
            time.sleep(0.2)
            lease = successor.claim(KEY)
    finally:
        holder.kill()
    assert lease is not None, "the killed holder's lease was never freed"
    with store_engine.connect() as connection:
        acquired = connection.execute(
            text("SELECT acquired_at FROM work_leases WHERE key = :key"), {"key": KEY}
        ).scalar_one()
    assert acquired >= expires, "taken over before the dead holder's lease expired"


def test_a_daemon_restarted_on_its_state_directory_takes_its_leases_back_at_once(
    store_engine: Engine, tmp_path: Path
) -> None:
    killed = LeaseBook(store_engine, daemon_owner("host-a", tmp_path / "a"))
    assert killed.claim(KEY) is not None  # and never released: the process died mid-pull
    restarted = LeaseBook(store_engine, daemon_owner("host-a", tmp_path / "a"))
    elsewhere = LeaseBook(store_engine, daemon_owner("host-a", tmp_path / "b"))
    assert elsewhere.claim(KEY) is None
    assert restarted.claim(KEY) is not None
