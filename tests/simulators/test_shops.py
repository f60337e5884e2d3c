"""The synthetic shop generator: deterministic, consistent, and reproducing the traps it is meant to."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from simulators.dataset import ESP_PLATFORMS, ShopData
from simulators.shop_email import SEND_SLOTS
from simulators.shop_truth import ShopTruth, labels, oracle_purchase_probability
from simulators.shops import generate, generate_with_truth, read_table, truth, write_large

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def tiny() -> ShopData:
    return generate("tiny", seed=11, as_of=AS_OF)


@pytest.fixture(scope="module")
def small() -> tuple[ShopData, ShopTruth]:
    return generate_with_truth("small", seed=7, as_of=AS_OF)


def test_same_seed_same_shop_and_other_seed_other_shop(tiny: ShopData) -> None:
    again = generate("tiny", seed=11, as_of=AS_OF)
    assert again.people == tiny.people
    assert again.orders == tiny.orders
    assert again.events == tiny.events
    assert again.campaigns == tiny.campaigns
    other = generate("tiny", seed=12, as_of=AS_OF)
    assert [o.total for o in other.orders] != [o.total for o in tiny.orders]


def test_bad_size_and_naive_as_of_are_refused() -> None:
    with pytest.raises(ValueError, match="shop size"):
        generate("huge")
    with pytest.raises(ValueError, match="timezone-aware"):
        generate("tiny", as_of=datetime(2025, 1, 1))


def test_default_as_of_is_todays_utc_midnight() -> None:
    shop = generate(20, seed=1)
    now = datetime.now(UTC)
    assert shop.as_of == now.replace(hour=0, minute=0, second=0, microsecond=0)


def test_orders_reference_people_and_lines_add_up(tiny: ShopData) -> None:
    ids = {p.person_id for p in tiny.people}
    product_ids = {p.product_id for p in tiny.products}
    assert len(tiny.orders) > 200
    assert len({o.order_id for o in tiny.orders}) == len(tiny.orders)
    for order in tiny.orders:
        assert order.person_id in ids
        assert order.lines, order.order_id
        gross = sum(line.quantity * line.unit_price for line in order.lines)
        assert gross - order.discount_total == pytest.approx(order.total, abs=0.01)
        assert sum(line.discount for line in order.lines) == pytest.approx(order.discount_total, abs=0.01)
        assert all(line.product_id in product_ids and line.quantity >= 1 for line in order.lines)
        assert (order.discount_total > 0) == (order.discount_code is not None)
        assert order.ordered_at <= order.updated_at <= tiny.as_of
        if order.cancelled_at is not None:
            assert order.ordered_at <= order.cancelled_at <= order.updated_at


def test_every_time_is_aware_utc_and_not_after_as_of(tiny: ShopData) -> None:
    times = [t for p in tiny.people for t in (p.created_at, p.updated_at)]
    times += [o.ordered_at for o in tiny.orders] + [e.occurred_at for e in tiny.events]
    times += [c.sent_at for c in tiny.campaigns]
    assert all(t.utcoffset() == timedelta(0) and t <= tiny.as_of for t in times)
    first_order = {}
    for order in tiny.orders:
        first_order.setdefault(order.person_id, order.ordered_at)
    assert all(tiny.person(pid).created_at <= at for pid, at in first_order.items())
    assert tiny.as_of - min(times) > timedelta(days=2 * 365)


def test_emails_unique_lowercase_and_fake(tiny: ShopData) -> None:
    emails = [p.email for p in tiny.people]
    assert len(set(emails)) == len(emails)
    assert all(
        e == e.lower() and e.split("@")[1].endswith(("example.com", "example.org", "example.net"))
        for e in emails
    )


def test_platform_membership_overlaps_as_designed(small: tuple[ShopData, ShopTruth]) -> None:
    shop, _ = small
    buyers = {o.person_id for o in shop.orders}
    shopify = {p.person_id for p in shop.people_on("shopify")}
    assert buyers <= shopify
    esp = {name: {p.person_id for p in shop.people_on(name)} for name in ESP_PLATFORMS}
    sizes = {name: len(members) / len(shop.people) for name, members in esp.items()}
    assert 0.6 < sizes["klaviyo"] < 0.85 and 0.3 < sizes["mailchimp"] < 0.5 and 0.2 < sizes["brevo"] < 0.4
    everywhere = shopify & esp["klaviyo"] & esp["mailchimp"] & esp["brevo"]
    only_shopify = shopify - esp["klaviyo"] - esp["mailchimp"] - esp["brevo"]
    prospects = {p.person_id for p in shop.people} - buyers
    assert len(everywhere) > 100 and len(only_shopify) > 100
    assert len(prospects) > 300 and all(shop.person(pid).platforms - {"shopify"} for pid in prospects)


def test_only_subscribed_people_receive_campaigns(small: tuple[ShopData, ShopTruth]) -> None:
    shop, _ = small
    receivers = {e.person_id for e in shop.events if e.kind == "received"}
    never = {p.person_id for p in shop.people if p.email_consent == "never_subscribed"}
    assert receivers and not receivers & never
    unsubscribed = {e.person_id for e in shop.events if e.kind == "unsubscribed"}
    assert unsubscribed and all(shop.person(pid).email_consent == "unsubscribed" for pid in unsubscribed)
    kinds = Counter(e.kind for e in shop.events)
    assert kinds["received"] > kinds["opened"] > kinds["clicked"] > kinds["unsubscribed"] > 0
    assert kinds["bounced"] > 0 and sum(kinds.values()) < 400_000


def _open_table(shop: ShopData) -> pd.DataFrame:
    frames = shop.frames()
    opens = frames.events.loc[frames.events["kind"] == "opened"]
    sent = frames.campaigns.set_index("campaign_id")["sent_at"]
    opens = opens.assign(sent_at=sent.reindex(opens["campaign_id"]).to_numpy())
    opened_at = opens["occurred_at"]
    return opens.assign(
        delay_hours=(opened_at - opens["sent_at"]).dt.total_seconds() / 3600,
        hour_of_week=opened_at.dt.day_of_week * 24 + opened_at.dt.hour,
    )


def test_opens_follow_sends_so_raw_open_hours_learn_the_shop_slot(small: tuple[ShopData, ShopTruth]) -> None:
    shop, truth = small
    opens = _open_table(shop)
    assert (opens["delay_hours"] >= 0).all()
    assert (opens["delay_hours"] < 2).mean() > 0.6
    frequent = opens.groupby("person_id").filter(lambda g: len(g) >= 8)
    naive = frequent.groupby("person_id")["hour_of_week"].agg(lambda h: h.value_counts().idxmax())
    slots = {slot.hour_of_week for slot in SEND_SLOTS}
    true_hour = truth.people.set_index("person_id")["preferred_hour_of_week"].reindex(naive.index)
    assert len(naive) > 300
    assert naive.isin(slots).mean() > 0.8
    assert (naive != true_hour).mean() > 0.9


def test_late_opens_land_at_the_true_reading_hour(small: tuple[ShopData, ShopTruth]) -> None:
    """The truth is recoverable: opens long after the send happen at the person's own hour of day."""
    shop, truth = small
    opens = _open_table(shop)
    late = opens.loc[opens["delay_hours"] > 3]
    preferred = truth.people.set_index("person_id")["preferred_hour_of_week"].reindex(late["person_id"]) % 24
    assert (late["occurred_at"].dt.hour.to_numpy() == preferred.to_numpy()).mean() > 0.9


def test_replenishment_cycles_show_in_repeat_gaps(small: tuple[ShopData, ShopTruth]) -> None:
    shop, truth = small
    lines = shop.frames().order_lines.merge(shop.frames().orders[["order_id", "person_id", "ordered_at"]])
    coffee = lines.loc[lines["category"] == "coffee"].sort_values(["person_id", "ordered_at"])
    gaps = coffee.groupby("person_id")["ordered_at"].diff().dt.total_seconds() / 86400
    median_gap = gaps.groupby(coffee["person_id"]).median().dropna()
    cycle = truth.people.set_index("person_id")["cycle_coffee"].reindex(median_gap.index)
    assert len(median_gap) > 200
    assert np.median(np.abs(median_gap / cycle - 1)) < 0.1
    assert np.corrcoef(median_gap, cycle)[0, 1] > 0.8


def test_oracle_churn_auc_is_a_high_but_imperfect_ceiling(small: tuple[ShopData, ShopTruth]) -> None:
    _, truth = small
    cutoff = AS_OF - timedelta(days=90)
    oracle = oracle_purchase_probability(truth, cutoff, horizon_days=180)
    outcome = labels(truth, cutoff, horizon_days=180).merge(oracle, on="person_id")
    assert len(outcome) == len(oracle) > 2500
    churned = ~outcome["bought"]
    auc = roc_auc_score(churned, 1 - outcome["p_purchase"])
    print(f"oracle churn AUC on small: {auc:.3f}")
    assert 0.75 < auc < 0.97
    assert abs(outcome["p_purchase"].mean() - outcome["bought"].mean()) < 0.03  # calibrated on average
    dropped = truth.people.set_index("person_id")["dropout_day"].reindex(outcome["person_id"]) <= truth.day(
        cutoff
    )
    assert 0.8 < roc_auc_score(dropped, 1 - outcome["p_alive"]) < 0.99


def test_labels_count_the_hidden_future_year(small: tuple[ShopData, ShopTruth]) -> None:
    shop, truth = small
    assert truth.future_orders()["day"].gt(0).all() and len(truth.future_orders()) > 5000
    assert max(o.ordered_at for o in shop.orders) <= shop.as_of
    year = labels(truth, AS_OF, horizon_days=365).set_index("person_id")
    people = truth.people.set_index("person_id").reindex(year.index)
    assert np.allclose(year["spend"], people["future_spend_365"])
    assert (year["orders"] == people["future_orders_365"]).all()
    with pytest.raises(ValueError, match="horizon"):
        labels(truth, AS_OF, horizon_days=400)


def test_features_carry_signal_beyond_order_counts(small: tuple[ShopData, ShopTruth]) -> None:
    """Engaged people buy more and discount-sensitive people use more codes: room to beat BTYD."""
    _, truth = small
    buyers = truth.people.loc[truth.people["is_buyer"]]
    assert np.corrcoef(np.log(buyers["purchase_rate"]), buyers["engagement"])[0, 1] > 0.3
    shares = buyers.dropna(subset=["discounted_order_share"])
    assert np.corrcoef(shares["discount_sensitivity"], shares["discounted_order_share"])[0, 1] > 0.4
    cycles = truth.replenishment_cycles()
    assert set(cycles["category"]) == {"coffee", "pet-food", "skincare"} and (cycles["cycle_days"] > 10).all()


def test_truth_round_trips_through_files(small: tuple[ShopData, ShopTruth], tmp_path: Path) -> None:
    _, truth = small
    truth.save(tmp_path / "truth")
    loaded = ShopTruth.load(tmp_path / "truth")
    assert loaded.as_of == truth.as_of
    cutoff = AS_OF - timedelta(days=30)
    expected = oracle_purchase_probability(truth, cutoff, 60)
    pd.testing.assert_frame_equal(oracle_purchase_probability(loaded, cutoff, 60), expected, atol=1e-9)


def test_write_large_streams_chunks_and_reads_back(tmp_path: Path) -> None:
    """A 6k-person shop spans two chunks on disk and reads back equal to the in-memory shop."""
    manifest = write_large(tmp_path / "shop", size=6_000, seed=5, as_of=AS_OF)
    assert manifest["people"] == 6_000 and manifest["rows"]["people"] == 6_000
    people = pd.concat(read_table(tmp_path / "shop", "people", chunk_rows=5_000), ignore_index=True)
    assert people["person_id"].tolist() == list(range(1, 6_001)) and people["email"].is_unique
    events = pd.concat(read_table(tmp_path / "shop", "events"), ignore_index=True)
    assert manifest["rows"]["events"] == len(events) > 100_000
    shop = generate(6_000, seed=5, as_of=AS_OF).frames()
    assert sorted(events["event_id"]) == sorted(shop.events["event_id"])
    orders = pd.concat(read_table(tmp_path / "shop", "orders"), ignore_index=True)
    assert orders["ordered_at"].tolist() == shop.orders["ordered_at"].tolist()
    assert np.allclose(orders["total"], shop.orders["total"])
    future = pd.concat(read_table(tmp_path / "shop", "truth/orders"), ignore_index=True)
    assert (future["day"] > 0).sum() > 5_000
    with pytest.raises(FileNotFoundError, match="no such table"):
        next(read_table(tmp_path / "shop", "nope"))


def test_truth_of_a_shop_regenerates_the_same_truth() -> None:
    shop, expected = generate_with_truth("tiny", seed=11, as_of=AS_OF)
    again = truth(shop)
    pd.testing.assert_frame_equal(again.people, expected.people)
    pd.testing.assert_frame_equal(again.orders, expected.orders)
    with pytest.raises(ValueError, match="timezone-aware"):
        oracle_purchase_probability(again, datetime(2025, 1, 1), 30)


def test_campaigns_mostly_go_out_at_the_shop_slots_with_some_exploration(tiny: ShopData) -> None:
    slots = {slot.platform: slot.hour_of_week for slot in SEND_SLOTS}
    on_slot = [c.sent_at.weekday() * 24 + c.sent_at.hour == slots[c.platform] for c in tiny.campaigns]
    assert 0.75 < np.mean(on_slot) < 0.95
    assert 0.15 < np.mean([c.discount_offer for c in tiny.campaigns]) < 0.45


def test_frames_built_from_records_match_the_generated_frames(tiny: ShopData) -> None:
    """A ShopData assembled by hand (no generator frames) still offers the same frames."""
    generated = tiny.frames()
    rebuilt = dataclasses.replace(tiny, _frames=None, _by_id={}).frames()
    assert rebuilt.people["email"].tolist() == generated.people["email"].tolist()
    assert rebuilt.orders["total"].tolist() == generated.orders["total"].tolist()
    assert rebuilt.orders["ordered_at"].tolist() == generated.orders["ordered_at"].tolist()
    assert sorted(rebuilt.order_lines["line_id"]) == sorted(generated.order_lines["line_id"])
    assert rebuilt.events["event_id"].tolist() == generated.events["event_id"].tolist()
    assert rebuilt.campaigns["campaign_id"].tolist() == generated.campaigns["campaign_id"].tolist()
    assert len(rebuilt.products) == len(generated.products) == 42
