"""Klaviyo's `filter` query grammar, parsed for real: `op(field,value)` joined by commas (implicit AND).

Strings must be quoted ('...' or "..."), datetimes must NOT be quoted
(`greater-than(updated,2026-07-01T00:00:00Z)`; a quoted datetime is a 400 as on the real API),
numbers are bare, lists are `["a","b"]`, and `has(field)` takes no value. Only the field/operator
pairs the operation's `x-klaviyo-filters` lists are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from simulators.klaviyo.errors import KlaviyoError
from simulators.klaviyo.operations import DATETIME, NONE, STRING, FilterField

_OPERATOR = re.compile(r"[a-z]+(?:-[a-z]+)*")
_FIELD = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_.$-]*")
_BARE = re.compile(r"[^,()\[\]'\"]+")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


@dataclass(frozen=True)
class Quoted:
    """A quoted string literal (kept apart from bare tokens so a quoted datetime can be refused)."""

    text: str


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: Any  # str | datetime | float | tuple[...] | None

    def matches(self, actual: Any) -> bool:
        op = self.operator
        if op == "has":
            return actual is not None
        if op == "any" or (op == "equals" and isinstance(self.value, tuple)):
            return actual in self.value
        if op == "equals":
            return actual == self.value
        if actual is None:
            return False
        return _COMPARISONS[op](actual, self.value)


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "greater-than": lambda a, b: a > b,
    "greater-or-equal": lambda a, b: a >= b,
    "less-than": lambda a, b: a < b,
    "less-or-equal": lambda a, b: a <= b,
}


def _bad(detail: str) -> KlaviyoError:
    return KlaviyoError(400, "invalid", f"Invalid filter provided: {detail}", parameter="filter")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def expect(self, char: str) -> None:
        if self.pos >= len(self.text) or self.text[self.pos] != char:
            raise _bad(f"expected '{char}' at position {self.pos}")
        self.pos += 1

    def match(self, pattern: re.Pattern[str], what: str) -> str:
        found = pattern.match(self.text, self.pos)
        if not found:
            raise _bad(f"expected {what} at position {self.pos}")
        self.pos = found.end()
        return found.group(0)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expressions(self) -> list[tuple[str, str, Any, bool]]:
        """Parse the whole string into (operator, field, raw value, has_value) tuples."""
        found = [self.expression()]
        while self.peek() == ",":
            self.pos += 1
            found.append(self.expression())
        if self.pos != len(self.text):
            raise _bad(f"unexpected '{self.text[self.pos]}' at position {self.pos}")
        return found

    def expression(self) -> tuple[str, str, Any, bool]:
        operator = self.match(_OPERATOR, "an operator")
        self.expect("(")
        field = self.match(_FIELD, "a field name")
        if self.peek() == ")":
            self.pos += 1
            return operator, field, None, False
        self.expect(",")
        value = self.list_value() if self.peek() == "[" else self.scalar()
        self.expect(")")
        return operator, field, value, True

    def list_value(self) -> tuple[Any, ...]:
        self.expect("[")
        items = [self.scalar()]
        while self.peek() == ",":
            self.pos += 1
            items.append(self.scalar())
        self.expect("]")
        return tuple(items)

    def scalar(self) -> Quoted | str:
        quote = self.peek()
        if quote not in ("'", '"'):
            return self.match(_BARE, "a value").strip()
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text) and self.text[self.pos] != quote:
            if self.text[self.pos] == "\\" and self.pos + 1 < len(self.text):
                self.pos += 1
            chars.append(self.text[self.pos])
            self.pos += 1
        self.expect(quote)
        return Quoted("".join(chars))


def parse_datetime(token: str) -> datetime | None:
    """An unquoted ISO 8601 datetime (offset optional, UTC assumed), or None when it is not one."""
    if not _DATETIME.fullmatch(token):
        return None
    try:
        parsed = datetime.fromisoformat(token.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _typed(field: str, kind: str, raw: Quoted | str) -> Any:
    if kind == STRING:
        if not isinstance(raw, Quoted):
            raise _bad(f"value '{raw}' for '{field}' must be a quoted string")
        return raw.text
    if isinstance(raw, Quoted):
        shown = "datetime" if kind == DATETIME else "number"
        raise _bad(f"{shown} value for '{field}' must not be quoted")
    if kind == DATETIME:
        parsed = parse_datetime(raw)
        if parsed is None:
            raise _bad(f"'{raw}' is not a valid datetime for '{field}'")
        return parsed
    if not _NUMBER.fullmatch(raw):
        raise _bad(f"'{raw}' is not a valid number for '{field}'")
    return float(raw)


def _condition(
    operator: str, field: str, raw: Any, has_value: bool, allowed: dict[str, FilterField]
) -> Condition:
    spec = allowed.get(field)
    if spec is None:
        raise _bad(f"'{field}' is not a valid field for this endpoint")
    is_list = isinstance(raw, tuple)
    operators = spec.listed if is_list else spec.single
    if operator not in operators:
        shape = "a list value" if is_list else "this field"
        raise _bad(f"operator '{operator}' is not allowed for '{field}' with {shape}")
    if spec.kind == NONE:
        if has_value:
            raise _bad(f"'{operator}({field})' takes no value")
        return Condition(field, operator, None)
    if not has_value:
        raise _bad(f"'{operator}({field})' needs a value")
    if is_list:
        return Condition(field, operator, tuple(_typed(field, spec.kind, item) for item in raw))
    return Condition(field, operator, _typed(field, spec.kind, raw))


def parse_filter(text: str, allowed: dict[str, FilterField]) -> list[Condition]:
    """Parse and validate a `filter` parameter; raise a 400 naming the problem on anything unexpected."""
    if not text.strip():
        raise _bad("empty filter")
    return [_condition(*parsed, allowed) for parsed in _Parser(text).expressions()]
