"""Hypothesis strategies for hostile input: values a broken or malicious vendor could send.

Shared by the fuzz tests so every parsing path meets the same garbage: wrong types, NaN and
infinities, huge and NUL-laden strings, lone surrogates, bidi and zero-width characters, absurd
dates and offsets, deep nesting, and the record's own email in a field that must not echo it.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

EMAIL = "Hostile.Person@Example.COM"
HUGE = 100_000

_CHOSEN_STRINGS = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff@example.com",
    "\u202eevil\u202c",
    "\u200b",
    "x\u200b@exa\u200bmple.com",
    "\ufeff",
    "é" * 300,
    "𝕏" * 70,
    EMAIL,
    "not-an-email",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59+14:00",
    "9999-12-31T23:59:59-14:00",
    "2024-01-01T00:00:00+25:00",
    "2024-02-30T00:00:00Z",
    "2024-01-01T00:00:00",
    "2024-01-01",
    "1e309",
    "-1",
    "NaN",
    "Infinity",
)
_CHOSEN_NUMBERS = (0, -1, -0.0, 2**63, 2**70, -(2**70), 1e308, float("nan"), float("inf"), float("-inf"))

CHOSEN: tuple[Any, ...] = (
    None,
    True,
    [],
    {},
    [None],
    {"": None},
    *_CHOSEN_STRINGS,
    *_CHOSEN_NUMBERS,
    "a" * HUGE,
)
"""The hand-picked hostile values, for tests that try each of them in every field."""

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(_CHOSEN_STRINGS),
    st.sampled_from(_CHOSEN_NUMBERS),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(("a", "\x00", "\u202e", "@")).map(lambda c: c * HUGE),
)
"""One JSON-ish leaf, biased towards the values that break parsers."""

values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(("", "id", "\x00", "a")), inner, max_size=4),
    ),
    max_leaves=12,
)
"""A hostile JSON value: a scalar or nested lists/objects of them."""


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a JSON value (object keys and list indexes), parents before children."""
    found: list[tuple[Any, ...]] = []
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for key, child in children:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def _parent(record: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        record = record[key]
    return record


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A deep copy of `value` with the element at `path` set to `new`."""
    copied = copy.deepcopy(value)
    _parent(copied, path)[path[-1]] = new
    return copied


@st.composite
def hostile_variant(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """A copy of a valid vendor record with one hostile change: a key dropped, a value replaced,
    a garbage key added somewhere, or the whole record replaced by a non-object."""
    record = copy.deepcopy(valid)
    every = paths(record)
    action = draw(st.sampled_from(("drop", "replace", "replace", "add", "whole")))
    if action == "whole":
        return draw(values.filter(lambda v: not isinstance(v, dict)))
    if action == "add":
        containers = [()] + [p for p in every if isinstance(_parent(record, (*p, None)), dict)]
        where = draw(st.sampled_from(containers))
        target = _parent(record, (*where, None))
        target[draw(st.text(max_size=8))] = draw(values)
        return record
    path = draw(st.sampled_from(every))
    parent = _parent(record, path)
    if action == "drop":
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(values)
    return record
