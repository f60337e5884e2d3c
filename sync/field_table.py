"""The field table: every output espd can push, with what a marketer needs to know about it.

Each row names the score column that fills it, its type and unit, what it means, how it is computed,
its range, an example value and an example flow or segment that uses it. `docs/fields.md` is generated
from these rows (`espd field-guide`), so the guide cannot drift from what is pushed. User-defined
segments (config `segments.rules`) add one boolean row each at run time (`rule_field`).
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.base import FieldType
from connectors.records import FieldValue
from engine.lifecycle import STAGES
from engine.segments import SEGMENT_NAMES

UNKNOWN_TEXT = "unknown"
UNKNOWN_NUMBER = -1


@dataclass(frozen=True, slots=True)
class OutputField:
    output: str  # engine output column that fills it
    type: FieldType
    description: str
    how: str
    range: str
    example: FieldValue
    use: str
    unit: str = ""
    allowed: tuple[str, ...] = ()

    @property
    def unknown(self) -> FieldValue:
        if self.type in (FieldType.NUMBER, FieldType.INTEGER):
            return UNKNOWN_NUMBER
        if self.type is FieldType.DATE:
            return None
        if self.type is FieldType.BOOLEAN:
            return False
        return UNKNOWN_TEXT


OUTPUTS: tuple[OutputField, ...] = (
    OutputField(
        "churn_risk",
        FieldType.NUMBER,
        "Probability that the customer will not order again within the churn horizon.",
        "1 − calibrated P(order in the next 90 days), LightGBM on purchase history and engagement, "
        "or BG/NBD when the shop is too small.",
        "0 to 1 (-1: unknown)",
        0.82,
        "Win-back flow: churn_risk > 0.7 and clv_365 above the median.",
    ),
    OutputField(
        "churn_band",
        FieldType.CATEGORY,
        "Churn risk in words.",
        "low below 0.4, medium below 0.7, high from 0.7.",
        "low, medium, high, unknown",
        "high",
        "Win-back flow entry: churn_band is high.",
        allowed=("low", "medium", "high", UNKNOWN_TEXT),
    ),
    OutputField(
        "p_purchase",
        FieldType.NUMBER,
        "Probability of at least one order in the next 30 days.",
        "Calibrated LightGBM classifier (or BG/NBD), trained on rolling cutoffs of the shop's history.",
        "0 to 1 (-1: unknown)",
        0.35,
        "Campaign targeting: send the new collection to p_purchase > 0.3.",
    ),
    OutputField(
        "expected_orders",
        FieldType.NUMBER,
        "Expected number of orders in the next 30 days.",
        "LightGBM Poisson model (or BG/NBD).",
        "0 and up (-1: unknown)",
        0.6,
        "Frequency planning: fewer emails to expected_orders < 0.05.",
    ),
    OutputField(
        "clv_365",
        FieldType.NUMBER,
        "Predicted spend over the next 365 days.",
        "LightGBM spend model scaled to a year by the BG/NBD purchase curve, in the shop currency.",
        "0 and up (-1: unknown)",
        240.0,
        "VIP segment: clv_365 in the top tier.",
        unit="shop currency",
    ),
    OutputField(
        "clv_tier",
        FieldType.CATEGORY,
        "Where the customer's predicted 365-day value ranks in the shop.",
        "top 10 %, high next 20 %, medium next 30 %, low the rest.",
        "top, high, medium, low, unknown",
        "top",
        "VIP flow: clv_tier is top.",
        allowed=("top", "high", "medium", "low", UNKNOWN_TEXT),
    ),
    OutputField(
        "next_order_date",
        FieldType.DATE,
        "Expected date of the next order.",
        "Median wait under the purchase model's hazard, from the scoring date.",
        "a date (empty: unknown)",
        "2026-12-24",
        "Reminder flow: trigger 3 days before next_order_date.",
    ),
    OutputField(
        "lifecycle_stage",
        FieldType.CATEGORY,
        "Where the customer is in their life with the shop.",
        "From days since the last order against the shop's own repeat-purchase gaps (P75 active, P90 at "
        "risk, P98 churned); prospect = no order yet, new = first order within one cycle, loyal = many "
        "orders (P80 of repeat buyers, at least 3).",
        ", ".join(STAGES) + ", unknown",
        "at_risk",
        "Win-back flow: lifecycle_stage is at_risk or lapsed; welcome series: lifecycle_stage is new.",
        allowed=(*STAGES, UNKNOWN_TEXT),
    ),
    OutputField(
        "rfm_segment",
        FieldType.CATEGORY,
        "The customer's RFM group, the classic marketing map (Champions ... Lost).",
        "Recency, frequency and spend scored 1-5 on the shop's buyers (ties share a score), named from "
        "the R x (F+M)/2 grid.",
        "one of the 11 RFM names, or unknown (no order yet)",
        "Champions",
        "Loyalty campaign: rfm_segment is Champions or Loyal Customers.",
        allowed=(*SEGMENT_NAMES, UNKNOWN_TEXT),
    ),
    OutputField(
        "rfm_score",
        FieldType.TEXT,
        "The three RFM scores as digits: recency, frequency, money (5 = best).",
        "Each score is 1 + floor(5 x share of buyers doing worse).",
        "111 to 555, or unknown",
        "545",
        "Finer targeting: rfm_score starts with 5 (bought very recently).",
    ),
    OutputField(
        "microsegment",
        FieldType.TEXT,
        "A behavioural cluster described in words.",
        "k-means on order count, recency, basket size, categories, discount share and open rate; k by "
        "silhouette; the name comes from what sets the cluster apart.",
        "text, or unknown (no order yet)",
        "frequent small-basket discount buyers",
        "Tailor content: microsegment contains discount, send the offer-led version.",
    ),
    OutputField(
        "microsegment_id",
        FieldType.INTEGER,
        "The behavioural cluster's number; stays the same across retrains while the cluster does.",
        "Clusters are matched to the previous run's by centroid distance, so ids do not shuffle.",
        "0 and up (-1: unknown)",
        3,
        "Stable segment: microsegment_id equals 3, even if the cluster's wording changes.",
    ),
    OutputField(
        "control_group",
        FieldType.BOOLEAN,
        "True for customers held out of campaigns so uplift can be measured.",
        "sha256 of the salt and the customer id, below the configured share; stable across runs.",
        "true or false",
        False,
        "Exclude control_group is true from every campaign; `espd uplift` reports the difference.",
    ),
    OutputField(
        "best_send_hour_of_week",
        FieldType.INTEGER,
        "The hour of the week (UTC) at which the customer is most likely to open.",
        "Open hazard per inbox-hour corrected for when the shop sends, shrunk to the shop's pattern.",
        "0 (Monday 00:00 UTC) to 167 (-1: unknown)",
        58,
        "Send-time: schedule the campaign per recipient at best_send_hour_of_week.",
        unit="hour of week, UTC",
    ),
    OutputField(
        "best_send_hour_local",
        FieldType.INTEGER,
        "The best hour of the day to send, in the customer's own time zone.",
        "best_send_hour_of_week converted with the profile's IANA time zone.",
        "0 to 23 (-1: unknown, e.g. no time zone)",
        19,
        "Send-time in local time: ESP 'send in recipient time zone' at best_send_hour_local.",
        unit="hour, local time",
    ),
    OutputField(
        "replenishment_date",
        FieldType.DATE,
        "When the customer is expected to run out of the category they re-buy soonest.",
        "Median of the customer's repeat gap (log scale, pooled with the category's), given no purchase "
        "so far.",
        "a date (empty: unknown, no repeat-bought category)",
        "2026-12-02",
        "Replenishment reminder: trigger 5 days before replenishment_date.",
    ),
    OutputField(
        "replenishment_category",
        FieldType.TEXT,
        "The category the replenishment date is about.",
        "The customer's re-bought category with the earliest expected re-purchase.",
        "a category name, or unknown",
        "coffee",
        "Reminder content: show products of replenishment_category.",
    ),
    OutputField(
        "discount_score",
        FieldType.NUMBER,
        "How discount-driven the customer is compared with the shop's other customers.",
        "Share of discounted orders and the response to offer campaigns, shrunk to the shop and mapped to "
        "0-1 (0.5 = typical).",
        "0 to 1 (-1: unknown)",
        0.81,
        "Margin protection: send full-price campaigns to discount_score < 0.3.",
    ),
    OutputField(
        "discount_band",
        FieldType.CATEGORY,
        "Discount sensitivity in words.",
        "low below 1/3, medium below 2/3, high from 2/3 of discount_score.",
        "low, medium, high, unknown",
        "high",
        "Offer flow: discount_band is high gets the coupon, others do not.",
        allowed=("low", "medium", "high", UNKNOWN_TEXT),
    ),
    OutputField(
        "p_open_30d",
        FieldType.NUMBER,
        "Probability the customer opens at least one email in the next 30 days.",
        "Calibrated LightGBM on engagement history, used only when it beats the recent open-rate baseline.",
        "0 to 1 (-1: unknown, never received mail)",
        0.42,
        "List hygiene: sunset flow for p_open_30d < 0.05.",
    ),
    OutputField(
        "engagement_band",
        FieldType.CATEGORY,
        "Email engagement in words.",
        "low below 1/3, medium below 2/3, high from 2/3 of p_open_30d.",
        "low, medium, high, unknown",
        "medium",
        "Frequency: send daily to engagement_band high, weekly to the others.",
        allowed=("low", "medium", "high", UNKNOWN_TEXT),
    ),
    OutputField(
        "next_best_category",
        FieldType.TEXT,
        "The category the customer has not bought yet that they are most likely to want.",
        "Strongest co-purchase rule from the categories they own (support, confidence, lift), else the "
        "most popular category they lack.",
        "a category name, or unknown",
        "skincare",
        "Cross-sell flow: feature next_best_category in the post-purchase email.",
    ),
)

STAMPS: tuple[OutputField, ...] = (
    OutputField(
        "scored_at",
        FieldType.DATE,
        "When espd computed these values.",
        "The date of the scoring run that produced the pushed values.",
        "a date",
        "2026-11-23",
        "Check freshness: scored_at within the last week.",
    ),
    OutputField(
        "model_version",
        FieldType.TEXT,
        "Which model produced the values.",
        "The version of the promoted model, or the baseline's name.",
        "text",
        "2026-11-23.1",
        "Audit which model a campaign used.",
    ),
)
VOLATILE_STAMPS = ("scored_at",)
RULE_PREFIX = "seg_"


def rule_field(name: str, expression: str) -> OutputField:
    """The boolean field of one user-defined segment (`segments.rules` in the config)."""
    return OutputField(
        RULE_PREFIX + name,
        FieldType.BOOLEAN,
        f"In the user-defined segment {name!r}.",
        f"True when `{expression}` holds for the customer (a missing value makes a comparison false).",
        "true or false",
        True,
        f"Target the segment: {RULE_PREFIX}{name} is true.",
    )
