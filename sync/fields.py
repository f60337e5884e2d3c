"""Every field espd can push: one declarative table, the source of the field guide and of each push.

Each row says what a marketer sees (name, type, unit, meaning, range, an example use) and which
engine output fills it. A field is always set: a customer the engine could not score gets the
field's explicit `unknown` value (the text "unknown" for text and categories, -1 for numbers, false
for booleans, empty for dates), so
"is not one of" segments in the ESPs behave. Every push also stamps `scored_at` and `model_version`.
Vendors render the values their own way (connectors do that); names here are vendor-neutral.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from connectors.base import FieldSpec, FieldType
from connectors.records import FieldValue
from sync.field_table import OUTPUTS, STAMPS, OutputField, rule_field

if TYPE_CHECKING:
    from sync.config import Config

BY_OUTPUT = {f.output: f for f in OUTPUTS + STAMPS}
NUMERIC_TYPES = frozenset({FieldType.NUMBER, FieldType.INTEGER, FieldType.BOOLEAN})
PROFILE_ATTRIBUTES = ("country", "timezone")
_RULE_KINDS = {
    FieldType.NUMBER: "number",
    FieldType.INTEGER: "number",
    FieldType.BOOLEAN: "bool",
    FieldType.DATE: "text",
    FieldType.TEXT: "text",
    FieldType.CATEGORY: "text",
}


def available_outputs(rules: Sequence[tuple[str, str]] = ()) -> list[OutputField]:
    """The table's outputs followed by one boolean per user-defined segment (name, expression)."""
    return [*OUTPUTS, *(rule_field(name, expression) for name, expression in rules)]


def chosen_outputs(outputs: Sequence[str] | None, rules: Sequence[tuple[str, str]] = ()) -> list[OutputField]:
    """The outputs to push (all by default), in table order; unknown names are an error."""
    available = available_outputs(rules)
    if outputs is None:
        return available
    known = {f.output for f in available}
    unknown = [name for name in outputs if name not in known]
    if unknown:
        raise ValueError(f"unknown output(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [f for f in available if f.output in outputs]


def outputs_for(config: Config, destination: str) -> list[OutputField]:
    """What `config` sends to one destination: its own list, else `fields.outputs`, else everything."""
    chosen = config.fields.destinations.get(destination, config.fields.outputs)
    return chosen_outputs(chosen, rule_pairs(config))


def rule_field_kinds() -> dict[str, str]:
    """What a segment rule may refer to (outputs and profile attributes), with its kind for the checker."""
    kinds = {f.output: _RULE_KINDS[f.type] for f in OUTPUTS}
    return kinds | dict.fromkeys(PROFILE_ATTRIBUTES, "text")


def rule_pairs(config: Config) -> list[tuple[str, str]]:
    return [(rule.name, rule.when) for rule in config.segments.rules]


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
