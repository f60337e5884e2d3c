"""Seeded synthetic shops with known truth: `generate`, `generate_with_truth`, `truth`, `write_large`.

A shop is simulated in independent chunks of CHUNK_SIZE people (see `shop_chunk`), so `tiny` to
`medium` are built in memory as a `ShopData` (records plus the frames they came from) and `large` is
streamed to disk chunk by chunk (`shop_files`). The truth (latent rates, realized dropout, the future
year of orders, per-receipt conversion odds) is returned separately as a `ShopTruth` and never enters
`ShopData`, so no simulator can serve it by accident.

    shop, truth = generate_with_truth("small", seed=7)
    p = oracle_purchase_probability(truth, cutoff=truth.as_of, horizon_days=90)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from simulators.dataset import (
    Campaign,
    EmailEvent,
    Order,
    OrderLine,
    Person,
    Product,
    ShopData,
    ShopFrames,
)
from simulators.shop_chunk import (
    CURRENCY,
    SIZES,
    ShopChunk,
    default_as_of,
    iter_chunks,
    public_campaigns,
    shop_plan,
    shop_size,
)
from simulators.shop_email import add_event_ids_and_urls
from simulators.shop_files import read_table, write_large
from simulators.shop_truth import ShopTruth, labels, oracle_purchase_probability

__all__ = [
    "SIZES",
    "ShopTruth",
    "generate",
    "generate_with_truth",
    "labels",
    "oracle_purchase_probability",
    "read_table",
    "truth",
    "write_large",
]


def generate_with_truth(
    size: str | int, seed: int = 7, as_of: datetime | None = None
) -> tuple[ShopData, ShopTruth]:
    """Build a shop in memory (up to `medium`) and its truth."""
    stamp = default_as_of(as_of)
    products, campaigns = plan = shop_plan(seed, stamp)
    chunks = list(iter_chunks(shop_size(size), seed, stamp, plan))
    frames = ShopFrames(
        people=_concat(c.people for c in chunks),
        products=products,
        orders=_concat(c.orders for c in chunks).assign(currency=CURRENCY),
        order_lines=_concat(c.lines for c in chunks),
        campaigns=public_campaigns(campaigns, stamp),
        events=_public_events(chunks),
    )
    truth = ShopTruth(
        as_of=stamp,
        people=_concat(c.truth for c in chunks),
        orders=_concat(c.all_orders for c in chunks),
        exposures=_concat(c.exposures for c in chunks),
        campaigns=campaigns,
    )
    return _shop_data(f"shop-{shop_size(size)}", seed, stamp, frames), truth


def generate(size: str | int, seed: int = 7, as_of: datetime | None = None) -> ShopData:
    """A seeded synthetic shop: the same (size, seed, as_of) gives the same shop."""
    return generate_with_truth(size, seed, as_of)[0]


def truth(shop: ShopData) -> ShopTruth:
    """The truth of a generated shop, by regenerating it (prefer `generate_with_truth`)."""
    return generate_with_truth(len(shop.people), shop.seed, shop.as_of)[1]


def _public_events(chunks: list[ShopChunk]) -> pd.DataFrame:
    events = _concat(c.events for c in chunks).sort_values("occurred_at", kind="stable", ignore_index=True)
    events = add_event_ids_and_urls(events)
    return events[["event_id", "person_id", "campaign_id", "kind", "occurred_at", "url"]]


def _concat(frames: Iterator[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(list(frames), ignore_index=True)


def _shop_data(name: str, seed: int, as_of: pd.Timestamp, frames: ShopFrames) -> ShopData:
    return ShopData(
        name=name,
        seed=seed,
        as_of=as_of.to_pydatetime(),
        currency=CURRENCY,
        people=_people(frames.people),
        products=[
            Product(r.product_id, r.title, r.category, float(r.price), _opt_int(r.repeat_cycle_days))
            for r in frames.products.itertuples(index=False)
        ],
        orders=_orders(frames.orders, frames.order_lines),
        campaigns=[
            Campaign(r.campaign_id, r.platform, r.name, r.sent_at.to_pydatetime(), bool(r.discount_offer))
            for r in frames.campaigns.itertuples(index=False)
        ],
        events=_events(frames.events),
        _frames=frames,
    )


def _opt_int(value: object) -> int | None:
    return None if pd.isna(value) else int(value)  # type: ignore[arg-type]


def _times(series: pd.Series) -> list[datetime | None]:
    """UTC timestamps -> aware datetimes, vectorized through datetime64[us].tolist() (NaT -> None)."""
    naive = series.dt.tz_convert(None).to_numpy().astype("datetime64[us]").tolist()
    return [None if t is None else t.replace(tzinfo=UTC) for t in naive]


def _people(frame: pd.DataFrame) -> list[Person]:
    created, updated = _times(frame["created_at"]), _times(frame["updated_at"])
    return [
        Person(int(r[0]), r[1], r[2], r[3], r[4], r[5], c, u, frozenset(r[8].split(",")), r[9])  # type: ignore[arg-type]
        for r, c, u in zip(frame.itertuples(index=False), created, updated, strict=True)
    ]


def _orders(orders: pd.DataFrame, lines: pd.DataFrame) -> list[Order]:
    position = pd.Series(np.arange(len(orders)), index=orders["order_id"].to_numpy())
    lines = lines.iloc[np.argsort(position.reindex(lines["order_id"]).to_numpy(), kind="stable")]
    all_lines = [
        OrderLine(lid, pid, cat, q, price, disc)
        for lid, pid, cat, q, price, disc in zip(
            lines["line_id"].tolist(),
            lines["product_id"].tolist(),
            lines["category"].tolist(),
            lines["quantity"].tolist(),
            lines["unit_price"].tolist(),
            lines["discount"].tolist(),
            strict=True,
        )
    ]
    ends = np.cumsum(
        lines.groupby("order_id", sort=False).size().reindex(orders["order_id"]).to_numpy()
    ).tolist()
    starts = [0, *ends[:-1]]
    columns = (
        orders["order_id"].tolist(),
        orders["person_id"].tolist(),
        _times(orders["ordered_at"]),
        _times(orders["updated_at"]),
        orders["currency"].tolist(),
        orders["total"].tolist(),
        orders["discount_total"].tolist(),
        [None if pd.isna(c) else c for c in orders["discount_code"].tolist()],
        _times(orders["cancelled_at"]),
    )
    return [
        Order(oid, pid, at, upd, cur, tot, disc, code, tuple(all_lines[a:b]), cancelled)
        for (oid, pid, at, upd, cur, tot, disc, code, cancelled), a, b in zip(
            zip(*columns, strict=True), starts, ends, strict=True
        )
    ]


def _events(frame: pd.DataFrame) -> list[EmailEvent]:
    occurred = _times(frame["occurred_at"])
    urls = [None if pd.isna(u) else u for u in frame["url"].tolist()]
    return [
        EmailEvent(eid, int(pid), cid, kind, t, url)  # type: ignore[arg-type]
        for eid, pid, cid, kind, t, url in zip(
            frame["event_id"].tolist(),
            frame["person_id"].tolist(),
            frame["campaign_id"].tolist(),
            frame["kind"].tolist(),
            occurred,
            urls,
            strict=True,
        )
    ]
