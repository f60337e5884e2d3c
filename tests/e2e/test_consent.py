"""A full cycle against all four platforms never changes subscription or consent state, never creates
a contact, and only writes espd's own fields; people no platform reports subscribed are not scored
unless the operator allows it, and what espd pushed to them before is reset once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from simulators import shops
from sync import tables
from sync.config import load_config
from sync.consent import unconsented_profile_ids
from sync.fields import field_values, outputs_for
from sync.store import open_engine
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


@pytest.fixture
def small_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Three cycles run here: a smaller shop (its scores come from the baseline models) keeps it quick."""
    running = Cluster(shops.generate(150, seed=5), tmp_path / "state").start(registered_vendors())
    yield running
    running.stop()


def test_people_without_consent_are_not_scored_and_fields_pushed_earlier_are_reset_once(
    small_cluster: Cluster,
) -> None:
    cluster = small_cluster
    cluster.write_config("privacy:\n  score_without_consent: true\n")
    people = {vendor: ADAPTERS[vendor].people(sim) for vendor, sim in cluster.sims.items()}
    everyone = cluster.once()["counts"]
    assert everyone["no_consent"] == everyone["withheld_no_consent"] == 0
    for vendor, sim in cluster.sims.items():  # pushing to everyone held still creates nobody
        assert ADAPTERS[vendor].people(sim) == people[vendor], vendor

    config = load_config(cluster.write_config(), cluster.env())  # the default: consent required
    engine = open_engine(config.store_url)
    unconsented = unconsented_profile_ids(engine)
    held = {vendor: _held(engine, vendor) for vendor in cluster.sims}
    withheld = sum(len(people.keys() & unconsented) for people in held.values())
    assert unconsented and withheld, "the shop must have people without consent on the platforms"

    required = cluster.once()["counts"]
    assert required["no_consent"] == len(unconsented)
    assert required["scored"] < everyone["scored"]
    assert required["withheld_no_consent"] == withheld
    assert required["cleared_no_consent"] == withheld, "everyone pushed before is reset, once"
    unknown = field_values(config.fields.prefix, outputs_for(config, "klaviyo"), None, date.today(), "")
    stamps = {config.fields.prefix + "scored_at", config.fields.prefix + "model_version"}
    compared = [n for n, value in unknown.items() if n not in stamps and value != ""]  # "" is stored unset
    klaviyo = ADAPTERS["klaviyo"]
    for pid, vendor_id in held["klaviyo"].items():
        values = klaviyo.stored_values(cluster.sims["klaviyo"], vendor_id)
        if pid in unconsented:
            assert {n: values.get(n) for n in compared} == {n: unknown[n] for n in compared}, vendor_id
    scored_churn = [
        klaviyo.stored_values(cluster.sims["klaviyo"], vid).get(config.fields.prefix + "churn_risk")
        for pid, vid in held["klaviyo"].items()
        if pid not in unconsented
    ]
    assert any(value != unknown[config.fields.prefix + "churn_risk"] for value in scored_churn)

    again = cluster.once()["counts"]
    assert again["withheld_no_consent"] == withheld
    assert again["cleared_no_consent"] == 0
    engine.dispose()


def _held(engine: Engine, source: str) -> dict[int, str]:
    """profile id -> vendor id of everyone the platform holds."""
    with Session(engine) as session:
        rows = session.execute(
            select(tables.Identity.profile_id, tables.Identity.vendor_id).where(
                tables.Identity.source == source, tables.Identity.profile_id.is_not(None)
            )
        )
        return {pid: vid for pid, vid in rows}
