"""Contact attribute definitions: Brevo's category/type compatibility rules and value type checks.

`createAttribute` allows boolean and multiple-choice only in category `normal`, `id` only in
`transactional`, `category` only in `category`; `value`/`isRecurring` only for calculated/global;
`enumeration` only for `category`; `multiCategoryOptions` only for multiple-choice. A type never
changes after creation. `updateContact` silently ignores a value that does not fit the attribute's
type (still 204), which `fits` decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulators.brevo.errors import BrevoError, invalid
from simulators.brevo.times import is_date_value

CATEGORIES = ("normal", "transactional", "category", "calculated", "global")
TYPES = ("text", "date", "float", "boolean", "id", "category", "multiple-choice")
_TYPE_ONLY_IN = {
    "boolean": "normal",
    "multiple-choice": "normal",
    "id": "transactional",
    "category": "category",
}
_TYPED_CATEGORIES = ("normal", "transactional", "category")


@dataclass(slots=True)
class Attribute:
    name: str
    category: str
    type: str | None
    enumeration: list[dict[str, Any]] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    value: str | None = None

    def as_json(self) -> dict[str, Any]:
        """An item of `getAttributes`; the listed `type` enum has no category/multiple-choice, so
        category attributes list as `text` with their enumeration (as Brevo's own example does)."""
        body: dict[str, Any] = {"name": self.name, "category": self.category}
        if self.type in ("text", "date", "float", "id", "boolean"):
            body["type"] = self.type
        elif self.type == "category":
            body["type"] = "text"
        if self.enumeration:
            body["enumeration"] = self.enumeration
        if self.value is not None:
            body["calculatedValue"] = self.value
        return body

    def fits(self, value: Any) -> bool:
        """Whether `value` would be stored by `updateContact` (else Brevo drops it silently)."""
        kind = self.type
        if kind == "text":
            return isinstance(value, str)
        if kind == "float":
            return isinstance(value, int | float) and not isinstance(value, bool)
        if kind == "boolean":
            return isinstance(value, bool)
        if kind == "date":
            return is_date_value(value)
        if kind == "id":
            return isinstance(value, int) and not isinstance(value, bool)
        if kind == "category":
            return any(value in (item["value"], item["label"]) for item in self.enumeration)
        if kind == "multiple-choice":
            return isinstance(value, list) and all(isinstance(v, str) and v in self.options for v in value)
        return False  # calculated/global attributes are not writable per contact


def build_attribute(category: str, name: str, body: dict[str, Any]) -> Attribute:
    """A new attribute from a `createAttribute` body, or a 400 naming the broken rule."""
    if category not in CATEGORIES:
        raise invalid(f"attributeCategory must be one of {', '.join(CATEGORIES)}")
    if not name or not name.replace("_", "").isalnum():
        raise invalid("attributeName must be alphanumeric (underscores allowed)")
    kind = body.get("type")
    if kind is not None and kind not in TYPES:
        raise invalid(f"type must be one of {', '.join(TYPES)}")
    if kind is not None and category not in _TYPED_CATEGORIES:
        raise invalid("type can only be used with the normal, category or transactional category")
    if kind in _TYPE_ONLY_IN and _TYPE_ONLY_IN[kind] != category:
        raise invalid(f"type {kind} is only available for {_TYPE_ONLY_IN[kind]} attributes")
    if category == "category":
        kind = "category"
    elif category in _TYPED_CATEGORIES and kind is None:
        kind = "text"
    _check_extras(category, kind, body)
    return Attribute(
        name=name.upper(),
        category=category,
        type=kind,
        enumeration=list(body.get("enumeration") or []),
        options=list(body.get("multiCategoryOptions") or []),
        value=body.get("value"),
    )


def _check_extras(category: str, kind: str | None, body: dict[str, Any]) -> None:
    if ("value" in body or "isRecurring" in body) and category not in ("calculated", "global"):
        raise invalid("value and isRecurring are only for calculated or global attributes")
    if category in ("calculated", "global") and not isinstance(body.get("value"), str):
        raise BrevoError(400, "missing_parameter", "value is required for calculated and global attributes")
    if "enumeration" in body and category != "category":
        raise invalid("enumeration is only for category attributes")
    if category == "category":
        _check_enumeration(body.get("enumeration"))
    if "multiCategoryOptions" in body and kind != "multiple-choice":
        raise invalid("multiCategoryOptions is only for multiple-choice attributes")
    if kind == "multiple-choice":
        options = body.get("multiCategoryOptions")
        if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
            raise BrevoError(400, "missing_parameter", "multiCategoryOptions is required for multiple-choice")


def _check_enumeration(enumeration: Any) -> None:
    if not isinstance(enumeration, list) or not enumeration:
        raise BrevoError(400, "missing_parameter", "enumeration is required for category attributes")
    for index, item in enumerate(enumeration):
        if not isinstance(item, dict) or not isinstance(item.get("value"), int) or "label" not in item:
            raise invalid(f"enumeration[{index}] must be an object with an integer value and a label")


def update_attribute(attribute: Attribute, body: dict[str, Any]) -> None:
    """`updateAttribute`: only value, enumeration and multiCategoryOptions; the type is immutable."""
    allowed = {"value", "enumeration", "multiCategoryOptions"}
    extra = sorted(set(body) - allowed)
    if extra:
        raise invalid(f"{', '.join(extra)} cannot be updated (the type of an attribute never changes)")
    if "value" in body:
        if attribute.category not in ("calculated", "global"):
            raise invalid("value can only be updated on calculated or global attributes")
        attribute.value = str(body["value"])
    if "enumeration" in body:
        if attribute.category != "category":
            raise invalid("enumeration can only be updated on category attributes")
        _check_enumeration(body["enumeration"])
        attribute.enumeration = list(body["enumeration"])
    if "multiCategoryOptions" in body:
        if attribute.type != "multiple-choice":
            raise invalid("multiCategoryOptions can only be updated on multiple-choice attributes")
        attribute.options = sorted(set(attribute.options) | set(body["multiCategoryOptions"]))
