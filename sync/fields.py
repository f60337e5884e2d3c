"""Every field espd can push: one declarative table, the source of the field guide and of each push.

Each row says what a marketer sees (name, type, unit, meaning, range, an example use) and which
engine output fills it. A field is always set: a customer the engine could not score gets the
field's explicit `unknown` value (the text "unknown" for text and categories, -1 for numbers), so
"is not one of" segments in the ESPs behave. Every push also stamps `scored_at` and `model_version`.
Vendors render the values their own way (connectors do that); names here are vendor-neutral.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from connectors.base import FieldSpec, FieldType
from connectors.records import FieldValue

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
BY_OUTPUT = {f.output: f for f in OUTPUTS + STAMPS}


def chosen_outputs(outputs: Sequence[str] | None) -> list[OutputField]:
    """The outputs to push (all by default), in table order; unknown names are an error."""
    if outputs is None:
        return list(OUTPUTS)
    unknown = [name for name in outputs if name not in BY_OUTPUT]
    if unknown:
        raise ValueError(
            f"unknown output(s) {', '.join(unknown)}; known: {', '.join(f.output for f in OUTPUTS)}"
        )
    return [f for f in OUTPUTS if f.output in outputs]


def field_specs(prefix: str, outputs: Iterable[OutputField]) -> list[FieldSpec]:
    return [FieldSpec(prefix + f.output, f.type, f.description, f.allowed) for f in (*outputs, *STAMPS)]


def render(field: OutputField, value: Any) -> FieldValue:
    """A canonical value for one output (dates as YYYY-MM-DD), or the field's explicit unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return field.unknown
    if field.type in (FieldType.NUMBER, FieldType.INTEGER):
        number = float(value)
        if not math.isfinite(number):
            return field.unknown
        return round(number) if field.type is FieldType.INTEGER else round(number, 4)
    if field.type is FieldType.DATE:
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        return str(value)[:10]
    if field.type is FieldType.BOOLEAN:
        return bool(value)
    return str(value)


def field_values(
    prefix: str,
    outputs: Iterable[OutputField],
    scores: Mapping[str, Any] | None,
    scored_at: date,
    model_version: str,
) -> dict[str, FieldValue]:
    """Every chosen field for one customer; `scores` is None for a customer the engine did not score."""
    values = {prefix + f.output: render(f, scores.get(f.output) if scores else None) for f in outputs}
    values[prefix + "scored_at"] = scored_at.isoformat()
    values[prefix + "model_version"] = model_version
    return values
