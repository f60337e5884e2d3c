"""Audience merge fields: definition rules and per-type value validation.

Rules not in the spec but enforced by the real API (notes sec. 2): tags are at most 10 characters of
`[A-Z0-9_]`, unique per audience, `MMERGE<n>` when omitted; at most 30 fields per audience including the
defaults; `type` is immutable. Values are checked per type on every member write;
`skip_merge_validation` only waives the *required* check, never the type check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from simulators.mailchimp.errors import invalid_resource

MERGE_TYPES = (
    "text",
    "number",
    "address",
    "phone",
    "date",
    "url",
    "imageurl",
    "radio",
    "dropdown",
    "birthday",
    "zip",
)
MAX_MERGE_FIELDS = 30
MAX_TEXT = 255
TAG_PATTERN = re.compile(r"^[A-Z0-9_]{1,10}$")
DEFAULT_FIELDS = (
    ("FNAME", "First Name", "text"),
    ("LNAME", "Last Name", "text"),
    ("ADDRESS", "Address", "address"),
    ("PHONE", "Phone Number", "phone"),
    ("BIRTHDAY", "Birthday", "birthday"),
)
EDITABLE = ("tag", "name", "required", "default_value", "public", "display_order", "options", "help_text")


@dataclass
class MergeField:
    merge_id: int
    tag: str
    name: str
    type: str
    required: bool = False
    default_value: str = ""
    public: bool = False
    display_order: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    help_text: str = ""

    def to_json(self, list_id: str) -> dict[str, Any]:
        return {
            "merge_id": self.merge_id,
            "tag": self.tag,
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default_value": self.default_value,
            "public": self.public,
            "display_order": self.display_order,
            "options": self.options,
            "help_text": self.help_text,
            "list_id": list_id,
        }


def _invalid(field_name: str, message: str) -> Exception:
    return invalid_resource(
        "The resource submitted could not be validated.", [{"field": field_name, "message": message}]
    )


def validate_definition(body: Any, *, creating: bool) -> dict[str, Any]:
    """Check a POST (`Merge_Field_1`) or PATCH (`Merge_Field_2`) body; return the editable values."""
    if not isinstance(body, dict):
        raise _invalid("", "The request body must be a JSON object.")
    if not creating and "type" in body:
        raise _invalid("type", "A merge field's type cannot be changed.")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _invalid("name", "This value should not be blank.")
    if creating and body.get("type") not in MERGE_TYPES:
        raise _invalid("type", f"Type must be one of: {', '.join(MERGE_TYPES)}.")
    values = {key: body[key] for key in EDITABLE if key in body}
    if creating:
        values["type"] = body["type"]
    if "tag" in values:
        tag = str(values["tag"]).upper()
        if not TAG_PATTERN.match(tag):
            raise _invalid("tag", "Tags are 1-10 characters of A-Z, 0-9 and _.")
        values["tag"] = tag
    if "default_value" in values:
        values["default_value"] = str(values["default_value"])
    return values


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("Please enter a number")
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    number = float(text)  # raises ValueError
    return int(number) if number.is_integer() and "." not in text else number


def _text(value: Any) -> str:
    if isinstance(value, dict | list | bool):
        raise ValueError("Please enter a text value")
    text = str(value)
    if len(text) > MAX_TEXT:
        raise ValueError(f"Text values are limited to {MAX_TEXT} characters")
    return text


def _date(value: Any) -> str:
    date.fromisoformat(str(value))  # raises ValueError
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
        raise ValueError("Please enter the date as YYYY-MM-DD")
    return str(value)


def _birthday(value: Any) -> str:
    match = re.fullmatch(r"(\d{2})/(\d{2})", str(value))
    if not match:
        raise ValueError("Please enter the birthday as MM/DD")
    date(2000, int(match[1]), int(match[2]))
    return str(value)


def _url(value: Any) -> str:
    text = _text(value)
    if not re.match(r"^https?://\S+$", text):
        raise ValueError("Please enter a valid URL")
    return text


def _address(value: Any) -> Any:
    if not isinstance(value, dict) or not all(value.get(key) for key in ("addr1", "city", "state", "zip")):
        raise ValueError("Please enter a complete address")
    return {key: str(value.get(key, "")) for key in ("addr1", "addr2", "city", "state", "zip", "country")}


def _zip(value: Any) -> str:
    if not re.fullmatch(r"\d{5}", str(value)):
        raise ValueError("Please enter a 5 digit zip code")
    return str(value)


_CONVERTERS = {
    "text": _text,
    "phone": _text,
    "number": _number,
    "date": _date,
    "birthday": _birthday,
    "url": _url,
    "imageurl": _url,
    "address": _address,
    "zip": _zip,
}


def convert_value(definition: MergeField, value: Any) -> Any:
    """The stored form of `value`, or ValueError with the message Mailchimp would give."""
    if value == "" or value is None:
        return ""
    if definition.type in ("radio", "dropdown"):
        choices = definition.options.get("choices") or []
        if str(value) not in choices:
            raise ValueError(f"Choose one of: {', '.join(choices)}")
        return str(value)
    try:
        return _CONVERTERS[definition.type](value)
    except (ValueError, TypeError) as exc:
        message = str(exc) if str(exc).startswith("Please") or "limited" in str(exc) else ""
        raise ValueError(message or f"Please enter a valid {definition.type} value") from None


def apply_values(
    definitions: dict[str, MergeField],
    current: dict[str, Any],
    incoming: Any,
    *,
    skip_required: bool,
) -> dict[str, Any]:
    """The member's merge fields after writing `incoming`; 400 `Invalid Resource` lists every bad field."""
    if not isinstance(incoming, dict):
        raise invalid_resource(
            "Your merge fields were invalid.", [{"field": "merge_fields", "message": "Must be an object."}]
        )
    merged = dict(current)
    errors: list[dict[str, str]] = []
    for tag, value in incoming.items():
        definition = definitions.get(str(tag).upper())
        if definition is None:
            errors.append({"field": str(tag), "message": "This merge field does not exist in the audience."})
            continue
        try:
            merged[definition.tag] = convert_value(definition, value)
        except ValueError as exc:
            errors.append({"field": definition.tag, "message": str(exc)})
    if not skip_required:
        errors += [
            {"field": d.tag, "message": "This field is required."}
            for d in definitions.values()
            if d.required and merged.get(d.tag) in (None, "")
        ]
    if errors:
        raise invalid_resource("Your merge fields were invalid.", errors)
    return merged
