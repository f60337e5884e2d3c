"""Orders of a synthetic shop: when people buy (the latent process) and what is in each basket.

Order times come from four sources, tagged in the truth: the first order (the day a buyer appears), the
Pareto/NBD base process thinned by seasonality, replenishment chains (a consumable buyer re-buys at
their own cycle while alive, continuing after each purchase with their own probability), and email
conversions (decided in `shop_email`). Baskets are then filled from the catalogue so that order values
follow the person's Gamma-Gamma-like spend level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulators.shop_model import (
    CONSUMABLES,
    DURABLE_CATEGORIES,
    FUTURE_DAYS,
    ORDER_VALUE_SHAPE,
    REPLENISH_GAP_NOISE,
    SEASON_MAX,
    season,
)

PRODUCTS_PER_CATEGORY = 6
PRICE_LEVEL = {"apparel": 45.0, "home": 60.0, "accessories": 25.0, "outdoor": 80.0}
CONSUMABLE_PRICE = {"coffee": 14.0, "pet-food": 32.0, "skincare": 22.0}
EVERGREEN_CODES = (("WELCOME10", 0.10), ("SPRING15", 0.15), ("VIP20", 0.20))
CAMPAIGN_CODE_RATE = 0.15
CANCEL_SHARE = 0.02
ADJECTIVES = ("Classic", "Everyday", "Organic", "Premium", "Light", "Studio")


def catalogue(rng: np.random.Generator) -> pd.DataFrame:
    """Products: durable categories and consumables (with a replenishment cycle)."""
    rows = []
    for category in DURABLE_CATEGORIES:
        rows += _category_rows(rng, category, PRICE_LEVEL[category], None)
    for item in CONSUMABLES:
        rows += _category_rows(rng, item.category, CONSUMABLE_PRICE[item.category], item.cycle_days)
    frame = pd.DataFrame(rows, columns=["title", "category", "price", "repeat_cycle_days"])
    frame.insert(0, "product_id", [f"P{i + 1:04d}" for i in range(len(frame))])
    return frame


def _category_rows(
    rng: np.random.Generator, category: str, level: float, cycle: int | None
) -> list[tuple[str, str, float, int | None]]:
    prices = np.round(level * np.exp(0.35 * rng.standard_normal(PRODUCTS_PER_CATEGORY)), 0) - 0.01
    return [
        (f"{ADJECTIVES[i]} {category.replace('-', ' ')}", category, float(max(prices[i], 4.99)), cycle)
        for i in range(PRODUCTS_PER_CATEGORY)
    ]


def order_times(rng: np.random.Generator, people: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Every order moment of every buyer from their first order to FUTURE_DAYS (no email orders)."""
    buyers = people.loc[people["is_buyer"]]
    first = pd.DataFrame({"person_id": buyers["person_id"], "day": buyers["created_day"], "source": "first"})
    first["consumable"] = -1
    return pd.concat(
        [first, _base_orders(rng, buyers, as_of), *_replenishments(rng, buyers)], ignore_index=True
    )


def _end_days(buyers: pd.DataFrame) -> np.ndarray:
    return np.minimum(buyers["dropout_day"].to_numpy(), FUTURE_DAYS)


def _base_orders(rng: np.random.Generator, buyers: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The Poisson part while alive, by thinning a SEASON_MAX-rate process with the seasonal curve."""
    start = buyers["created_day"].to_numpy()
    span = np.maximum(_end_days(buyers) - start, 0.0)
    counts = rng.poisson(buyers["purchase_rate"].to_numpy() * SEASON_MAX * span)
    owner = np.repeat(np.arange(len(buyers)), counts)
    day = start[owner] + rng.random(len(owner)) * span[owner]
    keep = rng.random(len(owner)) * SEASON_MAX < season(day, as_of)
    frame = pd.DataFrame({"person_id": buyers["person_id"].to_numpy()[owner[keep]], "day": day[keep]})
    frame["source"] = "base"
    frame["consumable"] = -1
    return frame


def _replenishments(rng: np.random.Generator, buyers: pd.DataFrame) -> list[pd.DataFrame]:
    """Chains started by the first order: gap = own cycle x noise, continue with own probability."""
    parts = []
    end = _end_days(buyers)
    for index, item in enumerate(CONSUMABLES):
        cycle = buyers[f"cycle_{item.category}"].to_numpy()
        day = buyers["created_day"].to_numpy().copy()
        active = ~np.isnan(cycle)
        while active.any():
            gap = cycle[active] * np.exp(REPLENISH_GAP_NOISE * rng.standard_normal(active.sum()))
            day[active] += gap
            goes_on = rng.random(active.sum()) < buyers["replenish_continue"].to_numpy()[active]
            active[active] = goes_on & (day[active] < end[active])
            parts.append(
                pd.DataFrame(
                    {
                        "person_id": buyers["person_id"].to_numpy()[active],
                        "day": day[active],
                        "consumable": index,
                    }
                )
            )
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    frame["source"] = "replenish"
    return [frame]


def fill_orders(
    rng: np.random.Generator, moments: pd.DataFrame, people: pd.DataFrame, products: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn order moments into orders and lines (sorted, with ids, codes, totals, cancellations)."""
    person = people.set_index("person_id")
    orders = moments.sort_values(["person_id", "day"], ignore_index=True)
    sequence = orders.groupby("person_id").cumcount()
    orders["order_id"] = "O" + orders["person_id"].astype(str) + "-" + (sequence + 1).astype(str)
    _assign_codes(rng, orders, person)
    lines = _lines(rng, orders, person, products)
    gross = (lines["quantity"] * lines["unit_price"]).groupby(lines["order_id"], sort=False).sum()
    discount = lines.groupby("order_id", sort=False)["discount"].sum()
    orders["discount_total"] = discount.reindex(orders["order_id"]).to_numpy().round(2)
    orders["total"] = (gross.reindex(orders["order_id"]).to_numpy() - orders["discount_total"]).round(2)
    _add_status_times(rng, orders)
    return orders, lines


def _assign_codes(rng: np.random.Generator, orders: pd.DataFrame, person: pd.DataFrame) -> None:
    """Email conversions carry their campaign's code; other orders an evergreen code, sensitivity-driven."""
    if "discount_code" not in orders:
        orders["discount_code"] = None
    sensitivity = person["discount_sensitivity"].reindex(orders["person_id"]).to_numpy()
    own = orders["source"].to_numpy() != "email"
    coded = own & (rng.random(len(orders)) < sensitivity)
    pick = rng.integers(0, len(EVERGREEN_CODES), len(orders))
    names = np.array([c[0] for c in EVERGREEN_CODES], dtype=object)
    rates = np.array([c[1] for c in EVERGREEN_CODES])
    code = orders["discount_code"].to_numpy(dtype=object).copy()
    code[own] = None
    code[coded] = names[pick[coded]]
    orders["discount_code"] = code
    orders["discount_rate"] = np.where(coded, rates[pick], np.where(pd.isna(code), 0.0, CAMPAIGN_CODE_RATE))


def _lines(
    rng: np.random.Generator, orders: pd.DataFrame, person: pd.DataFrame, products: pd.DataFrame
) -> pd.DataFrame:
    """Consumable lines for first and replenishment orders, durable lines sized to the spend level."""
    n = len(orders)
    consumable_rows = [_consumable_requests(orders, person, index) for index in range(len(CONSUMABLES))]
    durable_count = 1 + rng.poisson(0.5, n)
    durable_count[orders["source"].to_numpy() == "replenish"] = 0
    owner = np.repeat(np.arange(n), durable_count)
    mean_value = person["mean_order_value"].reindex(orders["person_id"]).to_numpy()
    target = rng.gamma(ORDER_VALUE_SHAPE, mean_value / ORDER_VALUE_SHAPE) / np.maximum(durable_count, 1)
    favourite = person["favourite_category"].reindex(orders["person_id"]).to_numpy()[owner]
    category = np.where(
        rng.random(len(owner)) < 0.6, favourite, rng.integers(0, len(DURABLE_CATEGORIES), len(owner))
    )
    product_row = category * PRODUCTS_PER_CATEGORY + rng.integers(0, PRODUCTS_PER_CATEGORY, len(owner))
    price = products["price"].to_numpy()[product_row]
    quantity = np.clip(np.round(target[owner] / price), 1, 4).astype(np.int64)
    durable = pd.DataFrame({"row": owner, "product_row": product_row, "quantity": quantity})
    lines = pd.concat([*consumable_rows, durable], ignore_index=True).sort_values("row", kind="stable")
    lines["quantity"] = np.where(
        lines["quantity"] > 0, lines["quantity"], 1 + (rng.random(len(lines)) < 0.2)
    ).astype(np.int64)
    return _line_frame(lines, orders, products)


def _consumable_requests(orders: pd.DataFrame, person: pd.DataFrame, index: int) -> pd.DataFrame:
    """A buyer of a consumable always buys the same product of it: on the first order and each refill."""
    cycle = person[f"cycle_{CONSUMABLES[index].category}"].reindex(orders["person_id"]).to_numpy()
    source = orders["source"].to_numpy()
    wanted = ((source == "first") & ~np.isnan(cycle)) | (orders["consumable"].to_numpy() == index)
    rows = np.flatnonzero(wanted)
    base = (len(DURABLE_CATEGORIES) + index) * PRODUCTS_PER_CATEGORY
    product_row = base + orders["person_id"].to_numpy()[rows] % PRODUCTS_PER_CATEGORY
    return pd.DataFrame({"row": rows, "product_row": product_row, "quantity": 0})


def _line_frame(lines: pd.DataFrame, orders: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    row = lines["row"].to_numpy()
    product = products.iloc[lines["product_row"].to_numpy()]
    frame = pd.DataFrame(
        {
            "order_id": orders["order_id"].to_numpy()[row],
            "product_id": product["product_id"].to_numpy(),
            "category": product["category"].to_numpy(),
            "quantity": lines["quantity"].to_numpy(),
            "unit_price": product["price"].to_numpy(),
        }
    )
    rate = orders["discount_rate"].to_numpy()[row]
    frame["discount"] = np.round(frame["quantity"] * frame["unit_price"] * rate, 2)
    frame["line_id"] = frame["order_id"] + "-L" + (frame.groupby("order_id").cumcount() + 1).astype(str)
    return frame


def _add_status_times(rng: np.random.Generator, orders: pd.DataFrame) -> None:
    n = len(orders)
    day = orders["day"].to_numpy()
    cancelled = rng.random(n) < CANCEL_SHARE
    orders["cancelled_day"] = np.where(cancelled, day + rng.uniform(0.05, 3.0, n), np.nan)
    orders["updated_day"] = np.fmax(day + rng.exponential(2.0, n), orders["cancelled_day"].to_numpy())
