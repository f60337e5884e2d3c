"""Canonical field values -> metafield value strings, as each metafield type expects them.

`metafieldsSet` takes every value as a string and checks it against the type: `number_decimal`
needs a plain decimal (no exponent, no NaN), `number_integer` an integer, `date` `YYYY-MM-DD`,
`boolean` `true`/`false`.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Decimal

from connectors.records import FieldValue

_KEY = re.compile(r"^[A-Za-z0-9_-]{2,64}$")
MAX_TEXT = 255


class RenderError(ValueError):
    """A value that cannot be written to its metafield type (the record fails, the batch goes on)."""


def check_key(key: str) -> None:
    if not _KEY.match(key):
        raise ValueError(f"field name {key!r} is not a valid metafield key (2-64 of A-Z a-z 0-9 _ -)")


def _decimal(value: FieldValue, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RenderError(f"field {key}: {type(value).__name__} is not a number")
    if not math.isfinite(value):
        raise RenderError(f"field {key}: {value} is not a finite number")
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _integer(value: FieldValue, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        raise RenderError(f"field {key}: {value!r} is not an integer")
    return str(int(value))


def _date(value: FieldValue, key: str) -> str:
    if isinstance(value, str):
        try:
            return (
                date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value).date()
            ).isoformat()
        except ValueError:
            pass
    raise RenderError(f"field {key}: {value!r} is not a YYYY-MM-DD date or ISO datetime")


def _boolean(value: FieldValue, key: str) -> str:
    if not isinstance(value, bool):
        raise RenderError(f"field {key}: {value!r} is not a boolean")
    return "true" if value else "false"


def _text(value: FieldValue, key: str) -> str:
    text = (
        _decimal(value, key)
        if isinstance(value, float)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )
    if "\n" in text or len(text) > MAX_TEXT:
        raise RenderError(f"field {key}: text must be one line of at most {MAX_TEXT} characters")
    return text


RENDERERS = {
    "number_decimal": _decimal,
    "number_integer": _integer,
    "date": _date,
    "boolean": _boolean,
    "single_line_text_field": _text,
}


def render(type_name: str, value: FieldValue, key: str) -> str:
    renderer = RENDERERS.get(type_name)
    if renderer is None:
        raise RenderError(f"field {key}: metafield type {type_name} is not one espd writes")
    return renderer(value, key)
