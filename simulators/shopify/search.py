"""Shopify's `query:` search syntax, compiled into a predicate over store records.

Grammar (shopify.dev "search syntax"): `field:value`, comparators `field:>v`, `>=`, `<`, `<=`,
quoted values ('...' or "..."), implicit AND between terms, explicit `AND`/`OR`, `NOT x` or `-x`,
and parentheses. Like the real API, an unknown field does not fail the request: the term is ignored
(matches everything) and a warning goes into `extensions.search`, so a client that ignores warnings
silently gets unfiltered data. Dates with a time part must be quoted: unquoted, the colons in the time
split the term, so the simulator rejects such a term with a warning, the stricter reading.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Predicate = Callable[[Any], bool]
FieldGetter = Callable[[Any], Any]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\() | (?P<rparen>\)) |
        (?P<neg>-)(?=\S) |
        (?P<term>(?:[^\s()'"]|'[^']*'|"[^"]*")+)
    )""",
    re.VERBOSE,
)
_FIELD_TERM = re.compile(r"^(?P<field>[A-Za-z_]+):(?P<op>>=|<=|>|<)?(?P<value>.*)$", re.DOTALL)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class SearchResult:
    predicate: Predicate
    warnings: list[dict[str, str]] = field(default_factory=list)


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, FieldGetter], free_text: FieldGetter) -> None:
        self.tokens = [m for m in _TOKEN.finditer(text) if m.lastgroup]
        self.pos = 0
        self.fields = fields
        self.free_text = free_text
        self.warnings: list[dict[str, str]] = []

    def _peek(self) -> tuple[str, str] | None:
        if self.pos >= len(self.tokens):
            return None
        match = self.tokens[self.pos]
        return match.lastgroup or "", match.group(match.lastgroup or 0)

    def parse(self) -> Predicate:
        predicate = self._or()
        if self._peek() is not None:  # a stray ')' : ignore the rest, as Shopify does, but say so
            self.warnings.append({"field": "query", "message": "Unbalanced parentheses in search query."})
        return predicate

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek() == ("term", "OR"):
            self.pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def _and(self) -> Predicate:
        parts: list[Predicate] = []
        while (token := self._peek()) is not None and token[0] != "rparen" and token != ("term", "OR"):
            if token == ("term", "AND"):
                self.pos += 1
                continue
            parts.append(self._unary())
        return lambda r: all(p(r) for p in parts)

    def _unary(self) -> Predicate:
        kind, text = self._peek() or ("", "")
        if kind == "neg" or (kind, text) == ("term", "NOT"):
            self.pos += 1
            inner = self._unary()
            return lambda r: not inner(r)
        if kind == "lparen":
            self.pos += 1
            inner = self._or()
            if self._peek() and self._peek()[0] == "rparen":  # type: ignore[index]
                self.pos += 1
            return inner
        self.pos += 1
        return self._term(text)

    def _term(self, text: str) -> Predicate:
        match = _FIELD_TERM.match(text)
        if match is None:
            needle = _unquote(text).lower()
            return lambda r: needle in self.free_text(r)
        name, op, raw = match["field"], match["op"] or ":", match["value"]
        getter = self.fields.get(name)
        if getter is None:
            self.warnings.append({"field": name, "message": "Invalid search field for this query."})
            return lambda r: True
        if ":" in raw and not raw.startswith(("'", '"')):
            self.warnings.append(
                {"field": name, "message": f"Unquoted value '{raw}' is not a valid search value."}
            )
            return lambda r: True
        try:
            return _compare(getter, op, _unquote(raw))
        except ValueError as exc:
            self.warnings.append({"field": name, "message": str(exc)})
            return lambda r: True


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def _compare(getter: FieldGetter, op: str, value: str) -> Predicate:
    """Compile one `field:op value` term; the getter's sample type decides how `value` parses."""
    probe = getattr(getter, "kind", "text")
    if probe == "time":
        return _time_compare(getter, op, value)
    if probe == "number":
        number = float(value)
        return lambda r: _ordered(getter(r), op, number)
    if probe in ("list", "list_not"):
        needle, wanted = value.lower(), probe == "list"
        return lambda r: (needle in [v.lower() for v in getter(r)]) == wanted
    needle = value.lower()
    if op == ":":
        return lambda r: (getter(r) or "").lower() == needle
    return lambda r: _ordered((getter(r) or "").lower(), op, needle)


def _ordered(actual: Any, op: str, value: Any) -> bool:
    if actual is None:
        return False
    return {
        ":": actual == value,
        ">": actual > value,
        ">=": actual >= value,
        "<": actual < value,
        "<=": actual <= value,
    }[op]


def _time_compare(getter: FieldGetter, op: str, value: str) -> Predicate:
    """A date-only value matches the whole day; a timestamp compares exactly."""
    try:
        if _DATE_ONLY.match(value):
            start = datetime.fromisoformat(value).replace(tzinfo=UTC)
            end = start + timedelta(days=1)
        else:
            start = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if start.tzinfo is None:
                start = start.replace(tzinfo=UTC)
            end = start + timedelta(microseconds=1)
    except ValueError:
        raise ValueError(f"Invalid date value '{value}'.") from None
    tests: dict[str, Predicate] = {
        ":": lambda t: start <= t < end,
        ">": lambda t: t >= end,
        ">=": lambda t: t >= start,
        "<": lambda t: t < start,
        "<=": lambda t: t < end,
    }
    check = tests[op]
    return lambda r: (t := getter(r)) is not None and check(t)


def typed(kind: str, getter: FieldGetter) -> FieldGetter:
    """Tag a getter with how its values compare: 'time', 'number', 'list', 'list_not' or 'text'."""

    def wrapped(record: Any) -> Any:
        return getter(record)

    wrapped.kind = kind  # type: ignore[attr-defined]
    return wrapped


def compile_search(
    text: str | None, fields: Mapping[str, FieldGetter], free_text: FieldGetter
) -> SearchResult:
    if not text or not text.strip():
        return SearchResult(lambda r: True)
    parser = _Parser(text, fields, free_text)
    return SearchResult(parser.parse(), parser.warnings)
