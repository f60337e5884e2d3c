"""The outputs beyond the core scores: segments, control group and the behavioural models, per customer.

The shop is read in customer chunks (see sync/scoring.py), and `SegmentStage` splits every output into
a shop-wide part fitted once and a per-chunk part:

- pass one (`gathered`, every chunk's history): counts that add up over chunks, so the shop-wide part
  is exactly the whole history's: the pooled repeat gaps and repeat buyers' order counts (lifecycle
  thresholds), the inbox-hours and opens by delay and hour of week (send-time shop pattern), the refill
  gap counts per category (replenishment cycles), the co-purchase counts (next-best rules and
  popularity), and each customer's discount evidence (a few counts per customer: the discount score's
  priors and scales need every customer's, so the score itself is computed once on all of them). The
  engagement model is the one part fitted on a sample: the first chunk (`engine.chunk_customers`
  buyers and the prospects among them), so that memory stays one chunk's even in the daily run, which
  trains no core model. Chunks are id-modulo partitions, so that is a uniform sample, and every step of
  its fit pools customers (training rows, Platt calibration, the baseline's prior), which the sample
  estimates: 50k buyers (the default chunk) give about 200k training rows over its 4 cutoffs, past
  which the AUC barely moves. Its values differ from a whole-shop fit once a shop has more chunks.
- pass two (`scored`, every chunk's history and its buyers' features): the per-chunk part of each
  output with the shop-wide parts, and the few feature columns RFM and micro-segments read (a handful
  of numbers per buyer, like the core scores).
- `outputs`: RFM quintiles and micro-segments on those columns of every buyer (exact: the same values
  the whole history's features have; k-means is fitted once, centroids kept across runs), the control
  group (a hash of the id) and the user rules (per row, but over the core scores' CLV tier, a rank
  known once every chunk is scored).

A shop of one chunk therefore gets exactly the values of a whole-history computation. A customer an
engine function has no row for keeps NaN there, which the field table renders as the field's
explicit unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from connectors.base import FieldType
from engine.affinity import CoPurchaseCounts, co_purchase_counts, next_best
from engine.control_group import control_assignment
from engine.discount import discount_evidence, score_discount
from engine.engagement import EngagementModel, fit_engagement, predict_engagement
from engine.frames import History
from engine.lifecycle import (
    LifecycleCounts,
    LifecycleThresholds,
    lifecycle_counts,
    lifecycle_stages,
    thresholds_from_counts,
)
from engine.microsegments import BEHAVIOUR_FEATURES, micro_segments
from engine.replenishment import GapStats, gap_stats, item_cycles, replenishment_dates
from engine.rules import Rule, RuleError
from engine.segments import RFM_INPUT_COLUMNS, rfm_segments
from engine.send_time import SendTimeCounts, ShopPattern, best_send_times, fit_shop_pattern, send_time_counts
from sync.field_table import OUTPUTS, RULE_PREFIX

# Columns of the engine's own frames that carry a per-customer model kind, renamed per output.
KIND_PREFIX = "kind_"
DATE_OUTPUTS = frozenset(f.output for f in OUTPUTS if f.type is FieldType.DATE)
# The buyer features RFM and micro-segments read, kept per buyer from pass two.
KEPT_FEATURES = tuple(dict.fromkeys((*RFM_INPUT_COLUMNS, *(f.column for f in BEHAVIOUR_FEATURES))))
LEVEL = "category"


@dataclass(frozen=True)
class SegmentInputs:
    """What the segment outputs need besides the history: rules, control group, earlier centroids."""

    rules: Sequence[Rule] = ()
    control_share: float = 0.0
    control_salt: str = "espd"
    previous_centroids: pd.DataFrame | None = None


@dataclass(frozen=True)
class SegmentOutputs:
    frame: pd.DataFrame  # index customer_id (str)
    centroids: pd.DataFrame | None  # microsegment centroids to store for the next run
    messages: list[str]


@dataclass
class _Counts:
    """Pass one's shop-wide counts, summed chunk by chunk."""

    lifecycle: LifecycleCounts
    send: SendTimeCounts
    gaps: GapStats
    co_purchase: CoPurchaseCounts

    def __add__(self, other: _Counts) -> _Counts:
        return _Counts(
            self.lifecycle + other.lifecycle,
            self.send + other.send,
            self.gaps + other.gaps,
            self.co_purchase + other.co_purchase,
        )


@dataclass(frozen=True)
class _ShopWide:
    """The shop-wide parts, fitted once between the passes."""

    thresholds: LifecycleThresholds
    send: ShopPattern
    cycles: pd.DataFrame
    co_purchase: CoPurchaseCounts
    engagement: EngagementModel


@dataclass
class SegmentStage:
    """Every non-core output of a shop read in chunks: `gathered` on each chunk (pass one), `fit`,
    `scored` on each chunk (pass two), then `outputs` (see the module docstring)."""

    inputs: SegmentInputs
    _counts: _Counts | None = None
    _evidence: list[pd.DataFrame] = field(default_factory=list)
    _sample: History | None = None  # the first chunk, for the engagement model
    _shop: _ShopWide | None = None
    _parts: list[pd.DataFrame] = field(default_factory=list)
    _features: list[pd.DataFrame] = field(default_factory=list)

    def gathered(self, index: int, history: History) -> None:
        counts = _Counts(
            lifecycle_counts(history.orders),
            send_time_counts(history),
            gap_stats(history, LEVEL),
            co_purchase_counts(history, LEVEL),
        )
        self._counts = counts if self._counts is None else self._counts + counts
        self._evidence.append(discount_evidence(history))
        if index == 0:
            self._sample = history

    def fit(self) -> None:
        """The shop-wide parts, from the gathered counts and the engagement sample (then let go)."""
        if self._counts is None or self._sample is None:
            raise ValueError("segments: fit() before chunk 0 was gathered")
        sample, self._sample = self._sample, None
        self._shop = _ShopWide(
            thresholds_from_counts(self._counts.lifecycle),
            fit_shop_pattern(self._counts.send),
            item_cycles(self._counts.gaps),
            self._counts.co_purchase,
            fit_engagement(sample),
        )

    def scored(self, index: int, history: History, features: pd.DataFrame) -> None:
        """One chunk's per-customer part, with the shop-wide parts."""
        if self._shop is None:
            raise ValueError(f"segments: chunk {index} scored before fit()")
        shop = self._shop
        stages, _ = lifecycle_stages(history, thresholds=shop.thresholds)
        frame = stages.set_index("customer_id")[["lifecycle_stage"]].copy()
        frame["reason_lifecycle_stage"] = _lifecycle_reason(stages, shop.thresholds.source).to_numpy()
        for part in (
            _send_times(best_send_times(history, shop=shop.send)),
            _replenishment(replenishment_dates(history, level=LEVEL, cycles=shop.cycles)),
            _engagement(predict_engagement(shop.engagement, history).scores),
            _next_best(next_best(history, level=LEVEL, k=1, counts=shop.co_purchase)),
        ):
            frame = frame.join(part, how="outer")
        self._parts.append(frame)
        self._features.append(features.loc[:, list(KEPT_FEATURES)])

    def outputs(self, core: pd.DataFrame, attributes: pd.DataFrame) -> SegmentOutputs:
        """Every non-core output per customer; `core` holds the core scores (customer_id column), and
        `attributes` profile attributes the rules may use (index customer_id)."""
        if self._shop is None:
            raise ValueError("segments: outputs() before fit()")
        t = self._shop.thresholds
        messages = [
            f"lifecycle thresholds ({t.source}): active {t.active_days:.0f} d, at risk "
            f"{t.at_risk_days:.0f} d, churned {t.churn_days:.0f} d, loyal from {t.loyal_orders} orders"
        ]
        features = pd.concat(self._features).sort_index(kind="stable")
        frame = pd.concat(self._parts).sort_index(kind="stable")
        frame = frame.join(rfm_segments(features).set_index("customer_id")[["rfm_segment", "rfm_score"]])
        clusters = micro_segments(features, self.inputs.previous_centroids)
        messages.append(f"micro-segments: k={clusters.k}")
        frame = frame.join(
            clusters.assignments.set_index("customer_id").rename(
                columns={"microsegment_name": "microsegment"}
            )
        )
        frame = frame.join(_discount(score_discount(pd.concat(self._evidence))), how="outer")
        control = control_assignment(frame.index, self.inputs.control_share, self.inputs.control_salt)
        frame["control_group"] = control["control_group"].to_numpy()
        frame["kind_control_group"] = "hash"
        frame.index.name = "customer_id"
        if self.inputs.rules:
            segments, notes = _rule_segments(self.inputs.rules, frame, core, attributes)
            frame = frame.join(segments)
            messages.extend(notes)
        return SegmentOutputs(frame, clusters.centroids, messages)


def _lifecycle_reason(stages: pd.DataFrame, source: str) -> pd.Series:
    days = stages["days_since_last_order"].round().astype("Int64").astype("string").fillna("no")
    return "orders: " + stages["n_orders"].astype(str) + "; days since last order: " + days + f" ({source})"


def _send_times(times: pd.DataFrame) -> pd.DataFrame:
    times = times.set_index("customer_id")
    return pd.DataFrame(
        {
            "best_send_hour_of_week": times["best_hour_of_week"],
            "best_send_hour_local": times["best_hour_of_day_local"],
            KIND_PREFIX + "best_send_hour_of_week": times["model_kind"],
            KIND_PREFIX + "best_send_hour_local": times["model_kind"],
        }
    )


def _replenishment(rows: pd.DataFrame) -> pd.DataFrame:
    soonest = rows.sort_values(["customer_id", "next_date", "item"]).drop_duplicates("customer_id")
    soonest = soonest.set_index("customer_id")
    return pd.DataFrame(
        {
            "replenishment_date": pd.to_datetime(soonest["next_date"]).dt.strftime("%Y-%m-%d"),
            "replenishment_category": soonest["item"].astype(str),
            KIND_PREFIX + "replenishment_date": soonest["model_kind"],
        }
    )


def _discount(scores: pd.DataFrame) -> pd.DataFrame:
    scores = scores.set_index("customer_id")
    return pd.DataFrame(
        {
            "discount_score": scores["discount_score"],
            "discount_band": scores["discount_band"],
            KIND_PREFIX + "discount_score": scores["model_kind"],
        }
    )


def _engagement(scores: pd.DataFrame) -> pd.DataFrame:
    scores = scores.set_index("customer_id")
    return pd.DataFrame(
        {
            "p_open_30d": scores["p_open_30d"],
            "engagement_band": scores["engagement_band"],
            KIND_PREFIX + "p_open_30d": scores["model_kind"],
        }
    )


def _next_best(picks: pd.DataFrame) -> pd.DataFrame:
    picks = picks.set_index("customer_id")
    return pd.DataFrame(
        {
            "next_best_category": picks["item"].astype(str),
            KIND_PREFIX + "next_best_category": picks["model_kind"],
            "reason_next_best_category": "based on "
            + picks["based_on"].astype("string").fillna("popularity"),
        }
    )


def _rule_segments(
    rules: Sequence[Rule], frame: pd.DataFrame, core: pd.DataFrame, attributes: pd.DataFrame
) -> tuple[pd.DataFrame, list[str]]:
    """One boolean column per rule, over the core scores, the outputs above and profile attributes.

    Dates are compared as YYYY-MM-DD text, the way they are pushed. A rule that cannot be evaluated
    on this data (checked at config load, so only a surprise in the data) selects nobody and says why
    instead of stopping the run.
    """
    inputs = frame.join(core.set_index("customer_id"), how="left").join(attributes, how="left")
    for name in DATE_OUTPUTS & set(inputs.columns):
        inputs[name] = pd.to_datetime(inputs[name], errors="coerce").dt.strftime("%Y-%m-%d")
    columns, messages = {}, []
    for rule in rules:
        for name in rule.fields - set(inputs.columns):
            inputs[name] = np.nan
        try:
            columns[RULE_PREFIX + rule.name] = rule.evaluate(inputs).astype(bool)
        except RuleError as exc:
            messages.append(f"segment rule {rule.name!r} selected nobody: {exc}")
            columns[RULE_PREFIX + rule.name] = pd.Series(False, index=inputs.index)
    return pd.DataFrame(columns, index=inputs.index), messages
