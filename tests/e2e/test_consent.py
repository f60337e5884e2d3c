"""A full cycle against all four platforms never changes subscription or consent state, never creates
a contact, and only writes espd's own fields."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators import shops
from tests.e2e.cluster import ADAPTERS, Cluster, registered_vendors

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(shops.generate(400, seed=9), tmp_path / "state").start(registered_vendors())
    running.write_config()
    yield running
    running.stop()


def test_a_full_cycle_changes_no_consent_anywhere(cluster: Cluster) -> None:
    before = {vendor: ADAPTERS[vendor].people(sim) for vendor, sim in cluster.sims.items()}
    summary = cluster.once()
    assert summary["counts"]["pushed"] > 0
    assert set(cluster.sims) == {"shopify", "klaviyo", "mailchimp", "brevo"}
    for vendor, sim in cluster.sims.items():
        adapter = ADAPTERS[vendor]
        entries = sim.log.entries()
        assert adapter.writes(entries), f"{vendor}: the cycle wrote nothing, so the scan proves nothing"
        assert adapter.consent_changes(entries) == [], vendor
        assert adapter.people(sim) == before[vendor], f"{vendor}: people were created or removed"
