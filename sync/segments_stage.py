"""The outputs beyond the core scores: segments, control group and the behavioural models, per customer.

One call turns the history and the core scores into one row per known customer (buyers and
profile-only prospects) holding every non-core column of the field table plus the user-defined
segments. Each engine function is vectorized; this module only joins their frames on customer_id.
A customer an engine function has no row for keeps NaN there, which the field table renders as the
field's explicit unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from connectors.base import FieldType
from engine.affinity import next_best
from engine.control_group import control_assignment
from engine.discount import discount_sensitivity
from engine.engagement import score_engagement
from engine.frames import History
from engine.lifecycle import lifecycle_stages
from engine.microsegments import micro_segments
from engine.replenishment import replenishment_dates
from engine.rules import Rule, RuleError
from engine.segments import rfm_segments
from engine.send_time import best_send_times
from sync.field_table import OUTPUTS, RULE_PREFIX

# Columns of the engine's own frames that carry a per-customer model kind, renamed per output.
KIND_PREFIX = "kind_"
DATE_OUTPUTS = frozenset(f.output for f in OUTPUTS if f.type is FieldType.DATE)


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


def segment_outputs(
    history: History,
    core: pd.DataFrame,
    features: pd.DataFrame,
    attributes: pd.DataFrame,
    inputs: SegmentInputs,
) -> SegmentOutputs:
    """Every non-core output per customer; `core` holds the core scores (customer_id column).

    `features` is the buyer feature frame the core models scored (index customer_id); `attributes`
    holds profile attributes the rules may use (index customer_id).
    """
    messages: list[str] = []
    stages, thresholds = lifecycle_stages(history)
    messages.append(
        f"lifecycle thresholds ({thresholds.source}): active {thresholds.active_days:.0f} d, "
        f"at risk {thresholds.at_risk_days:.0f} d, churned {thresholds.churn_days:.0f} d, "
        f"loyal from {thresholds.loyal_orders} orders"
    )
    frame = stages.set_index("customer_id")[["lifecycle_stage"]].copy()
    frame["reason_lifecycle_stage"] = _lifecycle_reason(stages, thresholds.source).to_numpy()
    frame = frame.join(rfm_segments(features).set_index("customer_id")[["rfm_segment", "rfm_score"]])
    clusters = micro_segments(features, inputs.previous_centroids)
    messages.append(f"micro-segments: k={clusters.k}")
    frame = frame.join(
        clusters.assignments.set_index("customer_id").rename(columns={"microsegment_name": "microsegment"})
    )
    for part in (
        _send_times(history),
        _replenishment(history),
        _discount(history),
        _engagement(history),
        _next_best(history),
    ):
        frame = frame.join(part, how="outer")
    control = control_assignment(frame.index, inputs.control_share, inputs.control_salt)
    frame["control_group"] = control["control_group"].to_numpy()
    frame["kind_control_group"] = "hash"
    frame.index.name = "customer_id"
    if inputs.rules:
        segments, notes = _rule_segments(inputs.rules, frame, core, attributes)
        frame = frame.join(segments)
        messages.extend(notes)
    return SegmentOutputs(frame, clusters.centroids, messages)


def _lifecycle_reason(stages: pd.DataFrame, source: str) -> pd.Series:
    days = stages["days_since_last_order"].round().astype("Int64").astype("string").fillna("no")
    return "orders: " + stages["n_orders"].astype(str) + "; days since last order: " + days + f" ({source})"


def _send_times(history: History) -> pd.DataFrame:
    times = best_send_times(history).set_index("customer_id")
    return pd.DataFrame(
        {
            "best_send_hour_of_week": times["best_hour_of_week"],
            "best_send_hour_local": times["best_hour_of_day_local"],
            KIND_PREFIX + "best_send_hour_of_week": times["model_kind"],
            KIND_PREFIX + "best_send_hour_local": times["model_kind"],
        }
    )


def _replenishment(history: History) -> pd.DataFrame:
    rows = replenishment_dates(history, level="category")
    soonest = rows.sort_values(["customer_id", "next_date", "item"]).drop_duplicates("customer_id")
    soonest = soonest.set_index("customer_id")
    return pd.DataFrame(
        {
            "replenishment_date": pd.to_datetime(soonest["next_date"]).dt.strftime("%Y-%m-%d"),
            "replenishment_category": soonest["item"].astype(str),
            KIND_PREFIX + "replenishment_date": soonest["model_kind"],
        }
    )


def _discount(history: History) -> pd.DataFrame:
    scores = discount_sensitivity(history).set_index("customer_id")
    return pd.DataFrame(
        {
            "discount_score": scores["discount_score"],
            "discount_band": scores["discount_band"],
            KIND_PREFIX + "discount_score": scores["model_kind"],
        }
    )


def _engagement(history: History) -> pd.DataFrame:
    result = score_engagement(history)
    scores = result.scores.set_index("customer_id")
    return pd.DataFrame(
        {
            "p_open_30d": scores["p_open_30d"],
            "engagement_band": scores["engagement_band"],
            KIND_PREFIX + "p_open_30d": scores["model_kind"],
        }
    )


def _next_best(history: History) -> pd.DataFrame:
    picks = next_best(history, level="category", k=1).set_index("customer_id")
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
