"""kill -9 during pull and during push, several times; then nothing is lost or written twice.

Real `espd once` processes run against the four simulators over loopback. After each kill the next
run resumes: every person each platform holds ends up in the store, the push ledger agrees with
what the simulators hold, a final cycle writes nothing, and no log line carries an email or a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from simulators import shops
from simulators.dataset import ShopData
from sync import tables
from sync.fields import chosen_outputs, field_values
from sync.ledger import fingerprint
from sync.store import open_engine
from tests.e2e.cluster import ADAPTERS, Cluster, registered_vendors

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def shop() -> ShopData:
    return shops.generate(500, seed=5)


@pytest.fixture
def cluster(shop: ShopData, tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(shop, tmp_path / "state").start(registered_vendors())
    running.write_config()
    yield running
    running.stop()


def _requests(cluster: Cluster, *, writes: bool) -> int:
    total = 0
    for vendor, sim in cluster.sims.items():
        entries = sim.log.entries()
        total += len(ADAPTERS[vendor].writes(entries)) if writes else len(entries)
    return total


def _assert_everyone_stored(cluster: Cluster) -> None:
    engine = open_engine(f"sqlite:///{cluster.state_dir / 'espd.sqlite'}")
    with Session(engine) as session:
        for vendor, sim in cluster.sims.items():
            stored = set(
                session.execute(
                    select(tables.Identity.vendor_id).where(tables.Identity.source == vendor)
                ).scalars()
            )
            assert stored == set(ADAPTERS[vendor].people(sim).values()), vendor
    engine.dispose()


def _assert_ledger_agrees_with_vendors(cluster: Cluster) -> int:
    """Every confirmed fingerprint matches the values the simulator holds for that customer."""
    engine = open_engine(f"sqlite:///{cluster.state_dir / 'espd.sqlite'}")
    checked = 0
    with Session(engine) as session:
        rows = session.execute(
            select(tables.PushLedger, tables.Identity.vendor_id).join(
                tables.Identity,
                (tables.Identity.profile_id == tables.PushLedger.profile_id)
                & (tables.Identity.source == tables.PushLedger.destination),
            )
        ).all()
        scores: dict[int, dict[str, object]] = {}
        version = ""
        for score in session.execute(select(tables.Score)).scalars():
            scores.setdefault(score.profile_id, {})[score.output] = score.value_text or score.value_num
            version = score.model_version
    engine.dispose()
    outputs = chosen_outputs(None)
    for ledger, vendor_id in rows:
        expected = field_values("espd_", outputs, scores.get(ledger.profile_id), _day(ledger), version)
        volatile = ("espd_scored_at", "espd_model_version")
        assert ledger.fingerprint == fingerprint(expected, volatile)
        held = ADAPTERS[ledger.destination].stored_values(cluster.sims[ledger.destination], vendor_id)
        assert held["espd_churn_band"] == expected["espd_churn_band"]
        assert held["espd_churn_risk"] == pytest.approx(expected["espd_churn_risk"], abs=1e-4)
        checked += 1
    return checked


def _day(ledger: tables.PushLedger) -> date:
    assert ledger.confirmed_at is not None
    return ledger.confirmed_at.date()


def _assert_logs_clean(cluster: Cluster, logs: list[str]) -> None:
    secrets = [v for k, v in cluster.env().items() if k.startswith("ESPD_E2E_")]
    for text in logs:
        assert not EMAIL.search(text), EMAIL.search(text)
        assert not any(secret in text for secret in secrets)


def test_kill_during_pull_at_several_points_loses_nothing(cluster: Cluster) -> None:
    logs = []
    for threshold in (5, 60):
        logs.append(cluster.kill_when(lambda t=threshold: _requests(cluster, writes=False) >= t))
    first = cluster.once()
    logs.append(cluster.last_stderr)
    _assert_everyone_stored(cluster)
    assert first["counts"]["pushed"] > 0
    assert _assert_ledger_agrees_with_vendors(cluster) > 0
    again = cluster.once()
    logs.append(cluster.last_stderr)
    assert again["counts"]["pushed"] == 0, again
    _assert_logs_clean(cluster, logs)


def test_kill_during_push_at_several_points_rewrites_at_most_the_interrupted_batch(cluster: Cluster) -> None:
    logs = []
    for extra_writes in (1, 3):
        seen = _requests(cluster, writes=True)
        logs.append(
            cluster.kill_when(lambda s=seen, n=extra_writes: _requests(cluster, writes=True) >= s + n)
        )
    writes_before_finish = _requests(cluster, writes=True)
    cluster.once()
    logs.append(cluster.last_stderr)
    _assert_everyone_stored(cluster)
    assert _assert_ledger_agrees_with_vendors(cluster) > 0
    assert _requests(cluster, writes=True) > writes_before_finish
    again = cluster.once()
    logs.append(cluster.last_stderr)
    assert again["counts"]["pushed"] == 0, again
    _assert_logs_clean(cluster, logs)
