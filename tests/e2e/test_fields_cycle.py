"""Issue 7's acceptance: fields defined once, every field written, then only what changed.

Real `espd once` processes against the four simulators over loopback, a shop of 700 people:

1. the first cycle creates every field definition on every platform and writes every configured field
   for every customer the platform holds;
2. a second cycle with no new data creates nothing and writes 0 values;
3. 37 customers get a new order (dated yesterday, so it is inside today's history). The score stage
   re-scores the shop but keeps the values of every customer whose own input rows did not change
   (shop-wide side effects such as ranks and retraining noise wait for the next day's refresh), so
   the platforms receive writes for those 37 customers only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from connectors.base import FieldType
from simulators import shops
from simulators.dataset import ShopData
from simulators.harness import Limits
from simulators.shopify.state import LineRecord, OrderRecord
from sync import tables
from sync.config import load_config
from sync.fields import field_specs, outputs_for
from sync.guide import vendor_names
from sync.store import open_engine
from tests.e2e.cluster import ADAPTERS, Cluster, registered_vendors

VENDORS = ("shopify", "klaviyo", "mailchimp", "brevo")
CHANGED = 37
EXTRA_CONFIG = """\
  sensitive_attributes: [country]
segments:
  control_group: {share: 0.1, salt: e2e}
  rules:
    - name: vip_at_risk
      when: churn_risk > 0.5 and clv_365 >= 100
privacy:
  score_without_consent: true  # every held customer gets fields, whatever their consent
"""


@pytest.fixture(scope="module")
def shop() -> ShopData:
    return shops.generate(700, seed=11)


@pytest.fixture
def cluster(shop: ShopData, tmp_path: Path) -> Iterator[Cluster]:
    # Rate limits at 20x the documented ones: this test is about fields, not pacing.
    running = Cluster(shop, tmp_path / "state", limits=Limits(scale=20.0)).start(registered_vendors())
    running.write_config(EXTRA_CONFIG)
    yield running
    running.stop()


def _pushes(summary: dict[str, object]) -> dict[str, dict[str, int]]:
    return {p["destination"]: p for p in summary["pushes"]}  # type: ignore[index,union-attr]


def _add_orders(cluster: Cluster) -> set[str]:
    """A new order yesterday for 37 Shopify customers who already bought; their customer GIDs."""
    state = cluster.sims["shopify"].state
    yesterday = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
    with state.lock:
        buyers = sorted(cid for cid, ids in state.customer_orders.items() if ids)[:CHANGED]
        template = state.orders[state.customer_orders[buyers[0]][0]]
    gids = set()
    for cid in buyers:
        order_id = state.next_id()
        line = LineRecord(**{**template.lines[0].__dict__, "id": state.next_id()}) if template.lines else None
        state.add_order(
            OrderRecord(
                id=order_id,
                number=order_id,
                customer_id=cid,
                email=state.customer(cid).email,
                processed_at=yesterday,
                created_at=yesterday,
                updated_at=state.now(),
                currency=template.currency,
                total=template.total,
                discount_total=0.0,
                discount_code=None,
                lines=[line] if line else [],
            )
        )
        gids.add(state.customer(cid).gid)
    return gids


def test_fields_defined_once_written_everywhere_then_only_changes(cluster: Cluster) -> None:
    assert set(cluster.sims) == set(VENDORS), "all four connectors must be registered"
    config = load_config(cluster.config_path, cluster.env())
    engine = open_engine(config.store_url)

    first = _pushes(cluster.once())
    for vendor in VENDORS:
        specs = field_specs(config.fields.prefix, outputs_for(config, vendor))
        defined = 0 if vendor == "klaviyo" else len(specs)  # Klaviyo properties need no definition
        assert first[vendor]["fields_created"] == defined, vendor
        assert first[vendor]["pushed"] == first[vendor]["candidates"] > 0, vendor
        assert first[vendor]["rejected"] == 0, vendor
        dates = {s.name for s in specs if s.type is FieldType.DATE}
        _assert_every_field_written(cluster, engine, vendor, {s.name for s in specs}, dates)

    audience = cluster.sims["mailchimp"].state.audience
    tags = {d.name: d.tag for d in audience.merge_fields.values() if d.tag.startswith("ESPD")}
    specs = field_specs(config.fields.prefix, outputs_for(config, "mailchimp"))
    assert tags == vendor_names("mailchimp", specs), "`espd fields` shows the tags Mailchimp got"

    second = _pushes(cluster.once())
    for vendor in VENDORS:
        assert (second[vendor]["fields_created"], second[vendor]["pushed"]) == (0, 0), vendor

    changed_gids = _add_orders(cluster)
    third_started = datetime.now(UTC)
    third = _pushes(cluster.once())
    changed = _profiles_of(engine, "shopify", changed_gids)
    assert len(changed) == CHANGED
    for vendor in VENDORS:
        written = _written_since(engine, vendor, third_started)
        assert third[vendor]["fields_created"] == 0, vendor
        assert third[vendor]["pushed"] == len(written), vendor
        assert written <= changed, f"{vendor} wrote customers whose data did not change"
        held = _profiles_held(engine, vendor) & changed
        assert written == held, f"{vendor}: {len(held - written)} changed customers not rewritten"
    engine.dispose()


def _assert_every_field_written(
    cluster: Cluster, engine: object, vendor: str, names: set[str], dates: set[str]
) -> None:
    """Every field is held; only a date may be absent: its unknown is empty, which vendors store as unset."""
    with Session(engine) as session:  # type: ignore[arg-type]
        vendor_ids = session.execute(
            select(tables.Identity.vendor_id).where(
                tables.Identity.source == vendor, tables.Identity.profile_id.is_not(None)
            )
        ).scalars()
        for vendor_id in vendor_ids:
            held = ADAPTERS[vendor].stored_values(cluster.sims[vendor], vendor_id)
            missing = names - set(held) - dates
            assert not missing, f"{vendor} {vendor_id} lacks {sorted(missing)}"


def _profiles_of(engine: object, source: str, vendor_ids: set[str]) -> set[int]:
    with Session(engine) as session:  # type: ignore[arg-type]
        rows = session.execute(
            select(tables.Identity.profile_id).where(
                tables.Identity.source == source, tables.Identity.vendor_id.in_(vendor_ids)
            )
        )
        return {pid for (pid,) in rows if pid is not None}


def _profiles_held(engine: object, source: str) -> set[int]:
    with Session(engine) as session:  # type: ignore[arg-type]
        rows = session.execute(select(tables.Identity.profile_id).where(tables.Identity.source == source))
        return {pid for (pid,) in rows if pid is not None}


def _written_since(engine: object, destination: str, since: datetime) -> set[int]:
    """Customers whose values the destination confirmed in a cycle started after `since`."""
    with Session(engine) as session:  # type: ignore[arg-type]
        ledger = tables.PushLedger
        rows = session.execute(
            select(ledger.profile_id).where(ledger.destination == destination, ledger.confirmed_at >= since)
        )
        return set(rows.scalars())
