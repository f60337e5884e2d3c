"""The engine's input contract, and the one function that cuts history at a point in time.

Four pandas frames describe a shop. Every timestamp is timezone-aware UTC; ids are strings (validation
converts integer ids, such as a store's profile ids, once per distinct id).

orders (one row per order; required)
    customer_id str, order_id str (unique), ordered_at datetime64[UTC],
    amount float (what was paid, after discounts, >= 0), discount float (>= 0; 0 when unknown)
lines (one row per order line; optional, may be empty)
    order_id str, customer_id str, product_id str, category str, quantity float,
    price float (line total), discount float, ordered_at datetime64[UTC] (copied from the order)
events (email engagement; optional, may be empty)
    customer_id str, kind str (received / opened / clicked / bounced / unsubscribed / ...),
    occurred_at datetime64[UTC], campaign_id str
customers (profiles; optional, may be empty)
    customer_id str, created_at datetime64[UTC] (NaT when unknown),
    timezone str (IANA name such as "Europe/Berlin"; <NA> when unknown or not a valid zone)
campaigns (email sends; optional, may be empty)
    campaign_id str (unique), sent_at datetime64[UTC], discount_offer bool (the send carried an offer)

Why one cut function: features and labels must never see the future. `history_at` returns a `History`
whose frames hold only rows strictly before its cutoff; every feature and label builder takes a
`History`, so code downstream cannot reach a later row even by mistake. Labels for a training cutoff
`c` are read from a `History` at a later date, never from the raw frames.

`validate_*` functions coerce types, and drop malformed rows (unparseable time, missing id, negative or
non-numeric amount) while counting them in `ValidationReport`, so one bad record never stops a run.
A missing required column raises `FrameError` naming the frame and the column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

ORDER_COLUMNS = ("customer_id", "order_id", "ordered_at", "amount", "discount")
LINE_COLUMNS = ("order_id", "customer_id", "product_id", "category", "quantity", "price", "discount")
EVENT_COLUMNS = ("customer_id", "kind", "occurred_at", "campaign_id")
CUSTOMER_COLUMNS = ("customer_id", "created_at", "timezone")
CAMPAIGN_COLUMNS = ("campaign_id", "sent_at", "discount_offer")


class FrameError(ValueError):
    """An input frame cannot be used at all (a required column is missing)."""


@dataclass
class ValidationReport:
    """Rows dropped while validating, per frame and reason, so a run can say what it skipped."""

    dropped: dict[str, int] = field(default_factory=dict)

    def count(self, where: str, n: int) -> None:
        if n:
            self.dropped[where] = self.dropped.get(where, 0) + int(n)

    def summary(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in sorted(self.dropped.items())) or "no rows dropped"


def _empty_campaigns() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "campaign_id": pd.Series(dtype="string"),
            "sent_at": pd.Series(dtype="datetime64[ns, UTC]"),
            "discount_offer": pd.Series(dtype="bool"),
        }
    )


@dataclass(frozen=True)
class ShopFrames:
    """The validated frames of one shop (campaigns are optional and default to none)."""

    orders: pd.DataFrame
    lines: pd.DataFrame
    events: pd.DataFrame
    customers: pd.DataFrame
    campaigns: pd.DataFrame = field(default_factory=_empty_campaigns)


@dataclass(frozen=True)
class History:
    """A shop's frames holding only what was known strictly before `cutoff`. Build with `history_at`."""

    frames: ShopFrames
    cutoff: pd.Timestamp

    @property
    def orders(self) -> pd.DataFrame:
        return self.frames.orders


def to_utc_timestamp(value: object) -> pd.Timestamp:
    """A timestamp in UTC; naive input is read as UTC, because the contract has no local times."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def history_at(frames: ShopFrames, cutoff: object) -> History:
    """The only way to look at a shop: every row at or after `cutoff` is removed, in every frame."""
    ts = to_utc_timestamp(cutoff)
    return History(
        frames=ShopFrames(
            orders=frames.orders[frames.orders["ordered_at"] < ts],
            lines=frames.lines[frames.lines["ordered_at"] < ts],
            events=frames.events[frames.events["occurred_at"] < ts],
            customers=frames.customers[~(frames.customers["created_at"] >= ts)],
            campaigns=frames.campaigns[frames.campaigns["sent_at"] < ts],
        ),
        cutoff=ts,
    )


def _require(df: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise FrameError(f"{name} frame: missing required column(s) {missing}; got {list(df.columns)}")


def _utc(series: pd.Series) -> pd.Series:
    out = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
    return out.astype("datetime64[ns, UTC]")


def _per_distinct(series: pd.Series, clean: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """`clean(series.astype("string"))`, computed once per distinct value and spread back to the rows.

    Ids, kinds and categories repeat (an event's customer id dozens of times), and converting and
    cleaning text row by row was most of reading a shop. Integer and string columns are factorized as
    they come (each distinct value has one text), so integer ids are converted once per customer;
    anything else is converted first, so 1 and 1.0 in one column stay "1" and "1.0".
    """
    exact = isinstance(series.dtype, pd.StringDtype) or pd.api.types.is_integer_dtype(series.dtype)
    codes, distinct = pd.factorize(series if exact else series.astype("string"))
    cleaned = clean(pd.Series(distinct).astype("string")).array
    return pd.Series(cleaned.take(codes, allow_fill=True), index=series.index, dtype="string")


def _stripped(text: pd.Series) -> pd.Series:
    out = text.str.strip()
    return out.mask(out == "")


def _ids(series: pd.Series) -> pd.Series:
    """Ids as stripped strings; an empty id is missing."""
    return _per_distinct(series, _stripped)


def _numbers(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype("float64")


def _keep(df: pd.DataFrame, ok: pd.Series, where: str, report: ValidationReport) -> pd.DataFrame:
    report.count(where, int((~ok).sum()))
    return df.loc[ok].reset_index(drop=True)


def validate_orders(raw: pd.DataFrame, report: ValidationReport) -> pd.DataFrame:
    """Orders with typed columns; rows with no id, no time or a bad amount are dropped and counted."""
    _require(raw, "orders", ORDER_COLUMNS[:4])
    df = pd.DataFrame(
        {
            "customer_id": _ids(raw["customer_id"]),
            "order_id": _ids(raw["order_id"]),
            "ordered_at": _utc(raw["ordered_at"]),
            "amount": _numbers(raw["amount"]),
            "discount": _numbers(raw["discount"]).fillna(0.0) if "discount" in raw else 0.0,
        }
    )
    ok = df["customer_id"].notna() & df["order_id"].notna() & df["ordered_at"].notna()
    df = _keep(df, ok, "orders: missing id or unparseable ordered_at", report)
    df = _keep(df, df["amount"].notna() & (df["amount"] >= 0), "orders: missing or negative amount", report)
    dup = df["order_id"].duplicated()
    df = _keep(df, ~dup, "orders: duplicate order_id", report)
    df["discount"] = df["discount"].clip(lower=0.0)
    return df.sort_values(["ordered_at", "order_id"], kind="stable").reset_index(drop=True)


def validate_lines(raw: pd.DataFrame, orders: pd.DataFrame, report: ValidationReport) -> pd.DataFrame:
    """Order lines joined to their order's time and customer; lines of unknown orders are dropped."""
    _require(raw, "lines", ("order_id",))
    df = pd.DataFrame(
        {
            "order_id": _ids(raw["order_id"]),
            "product_id": _ids(raw["product_id"]) if "product_id" in raw else pd.NA,
            "category": _ids(raw["category"]) if "category" in raw else pd.NA,
            "quantity": _numbers(raw["quantity"]).fillna(1.0) if "quantity" in raw else 1.0,
            "price": _numbers(raw["price"]) if "price" in raw else float("nan"),
            "discount": _numbers(raw["discount"]).fillna(0.0) if "discount" in raw else 0.0,
        }
    )
    # Order ids are unique once validated, so a lookup joins without a merge's sorting and checks.
    at = pd.Index(orders["order_id"]).get_indexer(df["order_id"])
    df = _keep(df, pd.Series(at >= 0, index=df.index), "lines: unknown order_id", report)
    order = orders.iloc[at[at >= 0]]
    df["customer_id"], df["ordered_at"] = order["customer_id"].array, order["ordered_at"].array
    df["product_id"] = df["product_id"].astype("string")
    df["category"] = df["category"].astype("string").fillna("unknown")
    return df[[*LINE_COLUMNS, "ordered_at"]]


def validate_events(raw: pd.DataFrame, report: ValidationReport) -> pd.DataFrame:
    """Engagement events with a lower-case kind; rows with no customer or time are dropped."""
    _require(raw, "events", EVENT_COLUMNS[:3])
    df = pd.DataFrame(
        {
            "customer_id": _ids(raw["customer_id"]),
            "kind": _per_distinct(raw["kind"], lambda text: text.str.strip().str.lower()),
            "occurred_at": _utc(raw["occurred_at"]),
            "campaign_id": _ids(raw["campaign_id"]) if "campaign_id" in raw else pd.NA,
        }
    )
    ok = df["customer_id"].notna() & df["occurred_at"].notna() & df["kind"].notna()
    return _keep(df, ok, "events: missing customer, kind or time", report)


@cache
def _is_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _timezones(raw: pd.DataFrame, report: ValidationReport) -> pd.Series:
    """IANA zone names; an unknown zone becomes <NA> (and is counted), the profile itself is kept."""
    if "timezone" not in raw:
        return pd.Series(pd.NA, index=raw.index, dtype="string")
    zones = _ids(raw["timezone"])
    bad = zones.map(_is_timezone, na_action="ignore").eq(False)
    report.count("customers: unknown timezone (kept the profile, timezone unknown)", int(bad.sum()))
    return zones.mask(bad)


def validate_customers(raw: pd.DataFrame, report: ValidationReport) -> pd.DataFrame:
    """Profiles keyed by customer_id; created_at and timezone may be unknown (NaT / <NA>)."""
    _require(raw, "customers", ("customer_id",))
    df = pd.DataFrame(
        {
            "customer_id": _ids(raw["customer_id"]),
            "created_at": _utc(raw["created_at"] if "created_at" in raw else pd.Series(pd.NaT, raw.index)),
            "timezone": _timezones(raw, report),
        }
    )
    df = _keep(df, df["customer_id"].notna(), "customers: missing customer_id", report)
    return df.drop_duplicates("customer_id").reset_index(drop=True)


def _flags(series: pd.Series) -> pd.Series:
    """Booleans from bools, 0/1 or true/false text; anything else is <NA>."""
    text = series.astype("string").str.strip().str.lower()
    return text.map({"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}).astype(
        "boolean"
    )


def validate_campaigns(raw: pd.DataFrame, report: ValidationReport) -> pd.DataFrame:
    """Email sends with their time and whether they carried an offer; unusable rows are dropped."""
    _require(raw, "campaigns", CAMPAIGN_COLUMNS[:2])
    df = pd.DataFrame(
        {
            "campaign_id": _ids(raw["campaign_id"]),
            "sent_at": _utc(raw["sent_at"]),
            "discount_offer": _flags(raw["discount_offer"]) if "discount_offer" in raw else False,
        }
    )
    ok = df["campaign_id"].notna() & df["sent_at"].notna()
    df = _keep(df, ok, "campaigns: missing campaign_id or unparseable sent_at", report)
    df = _keep(df, df["discount_offer"].notna(), "campaigns: discount_offer not true/false", report)
    df = _keep(df, ~df["campaign_id"].duplicated(), "campaigns: duplicate campaign_id", report)
    return df.astype({"discount_offer": "bool"})


def make_frames(
    orders: pd.DataFrame,
    lines: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    campaigns: pd.DataFrame | None = None,
) -> tuple[ShopFrames, ValidationReport]:
    """Validate raw frames into `ShopFrames`; absent optional frames become empty typed frames."""
    report = ValidationReport()
    valid_orders = validate_orders(orders, report)
    frames = _assemble(valid_orders, lines, events, customers, report)
    if campaigns is None:
        return frames, report
    return replace(frames, campaigns=validate_campaigns(campaigns, report)), report


def _assemble(
    orders: pd.DataFrame,
    lines: pd.DataFrame | None,
    events: pd.DataFrame | None,
    customers: pd.DataFrame | None,
    report: ValidationReport,
) -> ShopFrames:
    """Validate the optional frames against validated orders; an absent frame becomes empty and typed."""
    empty_lines = pd.DataFrame({"order_id": pd.Series(dtype="string")})
    empty_events = pd.DataFrame({c: pd.Series(dtype="string") for c in EVENT_COLUMNS})
    empty_customers = pd.DataFrame({"customer_id": pd.Series(dtype="string")})
    return ShopFrames(
        orders=orders,
        lines=validate_lines(empty_lines if lines is None else lines, orders, report),
        events=validate_events(empty_events if events is None else events, report),
        customers=validate_customers(empty_customers if customers is None else customers, report),
    )


def frames_from_order_rows(rows: pd.DataFrame) -> tuple[ShopFrames, ValidationReport]:
    """Frames from a flat orders file: one row per order, or per line with the order_id repeated.

    Required columns: customer_id, order_id, ordered_at, amount; optional: quantity, product_id,
    category, discount. When an order spans several rows, its amount and discount are the row sums
    and the rows become its lines.
    """
    _require(rows, "orders file", ORDER_COLUMNS[:4])
    report = ValidationReport()
    parsed = rows.assign(
        amount=_numbers(rows["amount"]),
        discount=_numbers(rows["discount"]).fillna(0.0) if "discount" in rows else 0.0,
    )
    bad_amount = parsed["amount"].isna() | (parsed["amount"] < 0)
    parsed = _keep(parsed, ~bad_amount, "orders file: missing or negative amount", report)
    by = parsed.groupby(_ids(parsed["order_id"]), sort=False, dropna=True)
    orders = pd.DataFrame(
        {
            "customer_id": by["customer_id"].first(),
            "ordered_at": by["ordered_at"].first(),
            "amount": by["amount"].sum(),
            "discount": by["discount"].sum(),
        }
    ).reset_index(names="order_id")
    report.count("orders file: missing order_id", int(_ids(parsed["order_id"]).isna().sum()))
    valid_orders = validate_orders(orders, report)
    has_lines = bool({"product_id", "category"} & set(rows.columns))
    lines = parsed.rename(columns={"amount": "price"})
    return _assemble(valid_orders, lines if has_lines else None, None, None, report), report
