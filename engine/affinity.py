"""Category affinity and next-best category or product, from spend shares and co-purchase counts.

Both are deliberately simple and explainable: a marketer can read "38 % of this customer's spend is
coffee, 2.1x the shop's share" and "71 % of the 240 customers who bought coffee also bought
skincare". Every recommendation carries its support (customers behind it), confidence and lift, and
falls back to the most popular item the customer lacks (`model_kind` = popularity) when no rule with
enough support applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse

from engine._behaviour import require_columns
from engine.frames import History

Level = Literal["product", "category"]
_ITEM_COLUMN: dict[str, str] = {"product": "product_id", "category": "category"}
NEXT_BEST_COLUMNS = (
    "customer_id",
    "rank",
    "level",
    "item",
    "based_on",
    "support",
    "confidence",
    "lift",
    "model_kind",
)


def category_affinity(history: History) -> pd.DataFrame:
    """Spend per customer and category: share of the customer's spend, and lift over the shop's share."""
    lines = history.frames.lines
    require_columns(lines, ["customer_id", "category", "price"], "lines")
    spend = lines.assign(spend=lines["price"].fillna(0.0).clip(lower=0.0))
    per = spend.groupby(["customer_id", "category"], as_index=False)["spend"].sum()
    total = per.groupby("customer_id")["spend"].transform("sum")
    per["share"] = (per["spend"] / total.where(total > 0)).fillna(0.0)
    shop = per.groupby("category")["spend"].sum()
    per["shop_share"] = per["category"].map(shop / shop.sum() if shop.sum() > 0 else shop * 0.0)
    per["lift"] = (per["share"] / per["shop_share"].where(per["shop_share"] > 0)).fillna(0.0)
    per["rank"] = per.groupby("customer_id")["share"].rank(method="first", ascending=False).astype(int)
    return per.sort_values(["customer_id", "rank"]).reset_index(drop=True)


@dataclass(frozen=True)
class CoPurchaseCounts:
    """Customers owning each pair of items (the diagonal: each item), and how many customers own any.

    Counts over customers, so two sets of customers' counts add up to both, exactly: a shop read in
    chunks gets the rules and the popularity ranking of the whole.
    """

    both: pd.DataFrame  # items x items, labels sorted
    customers: int

    def __add__(self, other: CoPurchaseCounts) -> CoPurchaseCounts:
        both = self.both.add(other.both, fill_value=0).fillna(0).astype("int64")
        return CoPurchaseCounts(both.sort_index().sort_index(axis=1), self.customers + other.customers)

    @property
    def popularity(self) -> pd.Series:
        """Customers owning each item, most owned first; ties by item, so the order is the data's alone."""
        owners = pd.Series(np.diag(self.both.to_numpy()), index=self.both.index, name="count")
        frame = owners.rename_axis("item").reset_index()
        return frame.sort_values(["count", "item"], ascending=[False, True]).set_index("item")["count"]


def co_purchase_counts(history: History, level: Level = "category") -> CoPurchaseCounts:
    """The `CoPurchaseCounts` of the history's customers."""
    owned = _owned(history, level)
    items = pd.Index(np.sort(owned["item"].unique()))
    customers = pd.Index(owned["customer_id"].unique())
    matrix = sparse.csr_matrix(
        (
            np.ones(len(owned)),
            (customers.get_indexer(owned["customer_id"]), items.get_indexer(owned["item"])),
        ),
        shape=(len(customers), len(items)),
    )
    both = pd.DataFrame((matrix.T @ matrix).toarray().astype("int64"), index=items, columns=items)
    return CoPurchaseCounts(both, len(customers))


def co_purchase_rules(history: History, level: Level = "category", min_support: int = 5) -> pd.DataFrame:
    """Rules A -> B over customers' item sets: support(A and B), confidence P(B | A), lift."""
    return rules_from_counts(co_purchase_counts(history, level), min_support)


def rules_from_counts(counts: CoPurchaseCounts, min_support: int = 5) -> pd.DataFrame:
    """`co_purchase_rules` read off gathered counts."""
    items, both = counts.both.index, counts.both.to_numpy()
    single = np.diag(both).astype(float)
    a, b = np.nonzero((both >= min_support) & ~np.eye(len(items), dtype=bool))
    confidence = both[a, b] / single[a]
    return pd.DataFrame(
        {
            "antecedent": items[a],
            "item": items[b],
            "support": both[a, b].astype(int),
            "confidence": confidence,
            "lift": confidence / (single[b] / max(counts.customers, 1)),
        }
    )


def next_best(
    history: History,
    level: Level = "category",
    k: int = 1,
    min_support: int = 5,
    counts: CoPurchaseCounts | None = None,
) -> pd.DataFrame:
    """Top-k items each buyer has not bought yet, by the strongest co-purchase rule from what they own.

    `counts` are the whole shop's (`co_purchase_counts`) when `history` holds only some of its
    customers (a chunk); by default they are counted on `history`.
    """
    if level not in _ITEM_COLUMN:
        raise ValueError(f"level: expected 'product' or 'category', got {level!r}")
    if k < 1:
        raise ValueError(f"k: need at least 1 recommendation per customer, got {k}")
    owned = _owned(history, level)
    if owned.empty:
        return pd.DataFrame(columns=list(NEXT_BEST_COLUMNS))
    counts = counts or co_purchase_counts(history, level)
    candidates = owned.rename(columns={"item": "antecedent"}).merge(
        rules_from_counts(counts, min_support), on="antecedent"
    )
    candidates = _not_owned(candidates, owned)
    candidates = candidates.sort_values(
        ["customer_id", "confidence", "lift", "support", "item"], ascending=[True, False, False, False, True]
    ).drop_duplicates(["customer_id", "item"])
    picked = candidates.groupby("customer_id").head(k).rename(columns={"antecedent": "based_on"})
    picked = picked.assign(model_kind="co_purchase")
    fallback = _popular_fill(owned, picked, k, counts)
    out = pd.concat([picked, fallback], ignore_index=True)
    out = out.sort_values(["customer_id", "model_kind", "confidence"], ascending=[True, True, False])
    out["rank"] = out.groupby("customer_id").cumcount() + 1
    out["level"] = level
    return out.loc[:, list(NEXT_BEST_COLUMNS)].reset_index(drop=True)


def _owned(history: History, level: Level) -> pd.DataFrame:
    column = _ITEM_COLUMN[level]
    lines = history.frames.lines
    require_columns(lines, ["customer_id", column], "lines")
    usable = lines.loc[lines[column].notna(), ["customer_id", column]]
    return usable.rename(columns={column: "item"}).drop_duplicates().reset_index(drop=True)


def _not_owned(candidates: pd.DataFrame, owned: pd.DataFrame) -> pd.DataFrame:
    keys = pd.MultiIndex.from_frame(owned[["customer_id", "item"]])
    mine = pd.MultiIndex.from_frame(candidates[["customer_id", "item"]]).isin(keys)
    return candidates.loc[~mine]


def _popular_fill(
    owned: pd.DataFrame, picked: pd.DataFrame, k: int, counts: CoPurchaseCounts
) -> pd.DataFrame:
    """Most-bought items the customer lacks, for the slots no rule filled."""
    n_customers = counts.customers
    popularity = counts.popularity
    have = picked.groupby("customer_id").size().reindex(owned["customer_id"].unique()).fillna(0)
    missing = have[have < k]
    top = popularity.index[: k + int(owned.groupby("customer_id").size().max())]
    grid = pd.MultiIndex.from_product([missing.index, top], names=["customer_id", "item"]).to_frame(
        index=False
    )
    grid = _not_owned(grid, pd.concat([owned, picked[["customer_id", "item"]]]))
    grid["order"] = grid["item"].map({item: i for i, item in enumerate(top)})
    grid = grid.sort_values(["customer_id", "order"])
    grid = grid.loc[
        grid.groupby("customer_id").cumcount() < (k - missing.reindex(grid["customer_id"]).to_numpy())
    ]
    support = grid["item"].map(popularity).astype(int)
    return grid.drop(columns="order").assign(
        based_on=pd.NA,
        support=support,
        confidence=support / max(n_customers, 1),
        lift=1.0,
        model_kind="popularity",
    )
