"""Metafield types the simulator accepts and how each checks a value (always sent as a string).

Shopify validates values against the type server-side; a client that formats a decimal with a comma
or sends `True` for a boolean must get INVALID_VALUE here too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime

_INTEGER = re.compile(r"^-?\d+$")
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
INT64 = 2**63


def _integer(value: str) -> str | None:
    if not _INTEGER.match(value) or not -INT64 <= int(value) < INT64:
        return "Value must be an integer."
    return None


def _decimal(value: str) -> str | None:
    if not _DECIMAL.match(value):
        return "Value must be a decimal number."
    whole = value.lstrip("-").split(".")
    if len(whole[0]) > 13 or (len(whole) > 1 and len(whole[1]) > 9):
        return "Value is outside the supported range (13 integer digits, 9 decimal places)."
    return None


def _boolean(value: str) -> str | None:
    return None if value in ("true", "false") else "Value must be true or false."


def _date_time(value: str) -> str | None:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return "Value must be in ISO 8601 date and time format."
    return None


def _date(value: str) -> str | None:
    try:
        date.fromisoformat(value)
    except ValueError:
        return "Value must be in YYYY-MM-DD format."
    return None


def _single_line(value: str) -> str | None:
    if "\n" in value or "\r" in value:
        return "Value must be a single line of text."
    return None if len(value) <= 5000 else "Value is too long (maximum is 5000 characters)."


def _multi_line(value: str) -> str | None:
    return None if len(value) <= 65535 else "Value is too long (maximum is 65535 characters)."


def _json(value: str) -> str | None:
    try:
        json.loads(value)
    except ValueError:
        return "Value must be valid JSON."
    return None


def _text_list(value: str) -> str | None:
    try:
        items = json.loads(value)
    except ValueError:
        return "Value must be a JSON array of strings."
    if not isinstance(items, list) or not all(isinstance(i, str) and _single_line(i) is None for i in items):
        return "Value must be a JSON array of single-line strings."
    return None


CHECKS: dict[str, Callable[[str], str | None]] = {
    "number_integer": _integer,
    "number_decimal": _decimal,
    "boolean": _boolean,
    "date_time": _date_time,
    "date": _date,
    "single_line_text_field": _single_line,
    "multi_line_text_field": _multi_line,
    "json": _json,
    "list.single_line_text_field": _text_list,
}


def check_value(type_name: str, value: str) -> str | None:
    """The problem with `value` for `type_name`, or None when it is valid."""
    return CHECKS[type_name](value)
