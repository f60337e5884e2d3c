"""Read the store into the engine's frames (see engine/frames.py for the contract).

The same purchase usually reaches espd several times: as a Shopify order, a Klaviyo "Placed Order"
event, a Mailchimp e-commerce order and a Brevo order. Counting each would triple every customer's
frequency, so for each customer espd keeps the orders of one source only: the first in
`ORDER_SOURCE_PRIORITY` (by connector type) that has any orders for that customer. Cancelled orders
are not purchases and are left out. Customer ids in the frames are the store's profile ids.

A large shop is read one chunk of customers at a time (`StoreChunks`, an `engine.chunks.ChunkSource`):
chunk i of n holds the profiles whose `profile_id % CHUNK_BUCKETS` is i modulo n, a condition the
database evaluates (migration 0006 indexes that expression), so only one chunk's rows leave it at a
time. The order-source choice is per customer, so it is the same chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Engine, Select, func, literal_column, select

from engine.chunks import chunks_for_buyers
from engine.frames import ShopFrames, ValidationReport, make_frames
from sync import tables
from sync.consent import without_customers
from sync.fields import PROFILE_ATTRIBUTES

ORDER_SOURCE_PRIORITY = ("shopify", "klaviyo", "mailchimp", "brevo")
# Profiles fall into this many buckets by id; a chunk is a set of buckets. Fixed (migration 0006 indexes
# `profile_id % 1024`, and the expression must match the index's to use it); 1024 chunks of 50k buyers
# would be a 50M-buyer shop.
CHUNK_BUCKETS = 1024


def chunk_condition(column: Any, index: int, n_chunks: int) -> ColumnElement[bool]:
    """`column` (a profile id) is in chunk `index` of `n_chunks`, as SQL both SQLite and PostgreSQL run.

    The modulus is a literal, not a bound parameter, so the planner matches the expression index.
    """
    if not 0 <= index < n_chunks <= CHUNK_BUCKETS:
        raise ValueError(f"chunk {index} of {n_chunks}: need 0 <= chunk < n_chunks <= {CHUNK_BUCKETS}")
    buckets = [b for b in range(CHUNK_BUCKETS) if b % n_chunks == index]
    return (column % literal_column(str(CHUNK_BUCKETS))).in_(buckets)


def load_frames(
    engine: Engine,
    source_types: Mapping[str, str],
    sensitive: Collection[str] = (),
    chunk: tuple[int, int] | None = None,
) -> tuple[ShopFrames, ValidationReport]:
    """All customers' orders, lines, events and profiles, as validated engine frames.

    `source_types` maps each connector name to its type (klaviyo, shopify, ...), which sets which
    source's orders count for a customer. Profiles carry their time zone (for local send hours)
    unless it is marked `sensitive`: a sensitive attribute never reaches the engine's frames, so no
    model can use it as a feature. `chunk` = (i, n) reads only the customers of chunk i of n.
    """

    def only(statement: Select[Any], column: Any) -> Select[Any]:
        return statement if chunk is None else statement.where(chunk_condition(column, *chunk))

    orders = _read(
        engine,
        only(
            select(
                tables.Order.source,
                tables.Order.vendor_id,
                tables.Order.profile_id,
                tables.Order.ordered_at,
                tables.Order.total,
                tables.Order.discount_total,
            ).where(tables.Order.profile_id.is_not(None), tables.Order.cancelled_at.is_(None)),
            tables.Order.profile_id,
        ),
    )
    orders = _one_source_per_customer(orders, source_types)
    orders = pd.DataFrame(
        {
            "customer_id": orders["profile_id"].astype("int64").astype(str),
            "order_id": orders["source"] + ":" + orders["vendor_id"],
            "ordered_at": orders["ordered_at"],
            "amount": orders["total"],
            "discount": orders["discount_total"],
        }
    )
    lines = select(
        tables.OrderLine.source,
        tables.OrderLine.order_vendor_id,
        tables.OrderLine.product_id,
        tables.OrderLine.category,
        tables.OrderLine.quantity,
        tables.OrderLine.unit_price,
        tables.OrderLine.discount,
    )
    if chunk is not None:  # lines carry no profile: their order's decides their chunk
        lines = lines.join(
            tables.Order,
            (tables.Order.source == tables.OrderLine.source)  # type: ignore[arg-type]
            & (tables.Order.vendor_id == tables.OrderLine.order_vendor_id),
        ).where(chunk_condition(tables.Order.profile_id, *chunk))
    lines = _read(engine, lines)
    lines = pd.DataFrame(
        {
            "order_id": lines["source"] + ":" + lines["order_vendor_id"],
            "product_id": lines["product_id"],
            "category": lines["category"],
            "quantity": lines["quantity"],
            "price": lines["unit_price"] * lines["quantity"] - lines["discount"],
            "discount": lines["discount"],
        }
    ).merge(orders[["order_id", "customer_id"]], on="order_id", how="inner")
    events = _read(
        engine,
        only(
            select(
                tables.Event.profile_id, tables.Event.kind, tables.Event.occurred_at, tables.Event.campaign_id
            ).where(tables.Event.profile_id.is_not(None)),
            tables.Event.profile_id,
        ),
    )
    events = events.assign(customer_id=events["profile_id"].astype("int64").astype(str)).drop(
        columns="profile_id"
    )
    customers = _read(
        engine,
        only(
            select(tables.Profile.id, tables.Profile.created_at, tables.Profile.timezone), tables.Profile.id
        ),
    )
    customers = customers.assign(customer_id=customers["id"].astype("int64").astype(str))
    kept = ["customer_id", "created_at", *(["timezone"] if "timezone" not in sensitive else [])]
    return make_frames(orders, lines, events, customers[kept])


@dataclass
class StoreChunks:
    """The store's customers in `n_chunks` chunks, read on demand (an `engine.chunks.ChunkSource`).

    The `exclude`d customers (sync/consent.py) are dropped from each chunk as it is read, so none of
    their rows reach the engine. Rows dropped while validating are counted in `report`, over every
    chunk read.
    """

    engine: Engine
    source_types: Mapping[str, str]
    n_chunks: int
    sensitive: Collection[str] = ()
    report: ValidationReport = field(default_factory=ValidationReport)
    exclude: Collection[int] = ()

    def chunk(self, index: int) -> ShopFrames:
        frames, report = load_frames(self.engine, self.source_types, self.sensitive, (index, self.n_chunks))
        for where, n in report.dropped.items():
            self.report.count(where, n)
        return without_customers(frames, self.exclude)


def chunks_for_store(engine: Engine, chunk_customers: int) -> int:
    """How many chunks keep each at about `chunk_customers` buyers (people with an order), at most
    `CHUNK_BUCKETS`: counted by the database, before any chunk is read."""
    statement = select(func.count(func.distinct(tables.Order.profile_id))).where(
        tables.Order.profile_id.is_not(None), tables.Order.cancelled_at.is_(None)
    )
    with engine.connect() as connection:
        buyers = int(connection.execute(statement).scalar_one())
    return min(chunks_for_buyers(buyers, chunk_customers), CHUNK_BUCKETS)


def chunk_members(ids: pd.Series, index: int, n_chunks: int) -> np.ndarray:
    """Which customer ids (profile ids as text) are in chunk `index` of `n_chunks`: `chunk_condition`
    in pandas, for per-customer frames read whole (profile attributes)."""
    return ((ids.astype("int64") % CHUNK_BUCKETS) % n_chunks == index).to_numpy()


def load_attributes(engine: Engine, names: Sequence[str]) -> pd.DataFrame:
    """Profile attributes by name (index customer_id): a Profile column, else the first identity's property.

    For rules and the segment audit only; the engine's frames never carry these (see `load_frames`).
    """
    columns = [c for c in PROFILE_ATTRIBUTES if c in names]
    profiles = _read(engine, select(tables.Profile.id, *(getattr(tables.Profile, c) for c in columns)))
    frame = profiles.assign(customer_id=profiles["id"].astype("int64").astype(str)).set_index("customer_id")
    frame = frame.drop(columns="id")
    extra = [n for n in names if n not in PROFILE_ATTRIBUTES]
    if extra:
        frame = frame.join(_identity_properties(engine, extra))
    return frame.reindex(columns=list(names))


def _identity_properties(engine: Engine, names: Sequence[str]) -> pd.DataFrame:
    rows = _read(
        engine,
        select(tables.Identity.profile_id, tables.Identity.properties)
        .where(tables.Identity.profile_id.is_not(None))
        .order_by(tables.Identity.source),
    )
    values = pd.json_normalize(rows["properties"].map(lambda p: p if isinstance(p, dict) else {}).tolist())
    values = values.reindex(columns=list(names)).assign(
        customer_id=rows["profile_id"].astype("int64").astype(str)
    )
    return values.groupby("customer_id").first()


def _read(engine: Engine, statement: object) -> pd.DataFrame:
    """The rows as a frame, built column by column: pandas building it from Row objects probes each
    row's attributes, which cost more than the query itself (py-spy, bench/steady_state.py)."""
    with engine.connect() as connection:
        result = connection.execute(statement)  # type: ignore[call-overload]
        names = list(result.keys())
        rows = result.fetchall()
    if not rows:
        return pd.DataFrame(columns=names)
    return pd.DataFrame(dict(zip(names, (list(column) for column in zip(*rows, strict=True)), strict=True)))


def _one_source_per_customer(orders: pd.DataFrame, source_types: Mapping[str, str]) -> pd.DataFrame:
    if orders.empty:
        return orders
    rank = {t: i for i, t in enumerate(ORDER_SOURCE_PRIORITY)}
    orders = orders.assign(_rank=orders["source"].map(lambda s: rank.get(source_types.get(s, ""), len(rank))))
    best = orders.groupby("profile_id")["_rank"].transform("min")
    return orders[orders["_rank"] == best].drop(columns="_rank")
