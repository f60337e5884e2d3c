"""Relay connections over sorted indexes: opaque cursors bound to (query, sortKey, reverse).

Records sort by (sort value, id), so ties never reorder between pages. A cursor carries the sort key
of its record and a digest of the query/sortKey/reverse it was issued for; reusing it with another
query is an error, as on Shopify. Paging bisects to the cursor and scans forward, so a page costs
O(page) when the filter matches most records, never a full re-sort.
"""

from __future__ import annotations

import base64
import hashlib
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Key = tuple[Any, ...]


class PagingError(ValueError):
    """A bad cursor or page size; the message is what Shopify tells the client."""


class SortedIndex(Generic[T]):
    def __init__(self, items: Iterable[T], key: Callable[[T], Key]) -> None:
        pairs = sorted(((key(item), item) for item in items), key=lambda pair: pair[0])
        self.keys: list[Key] = [k for k, _ in pairs]
        self.items: list[T] = [i for _, i in pairs]


@dataclass(frozen=True, slots=True)
class PageRequest:
    first: int | None
    after: str | None
    last: int | None
    before: str | None
    reverse: bool
    binding: str  # what the cursors are bound to: query text, sort key, direction


@dataclass(slots=True)
class Page(Generic[T]):
    entries: list[tuple[Key, T]]
    has_next: bool
    has_previous: bool
    binding: str

    def cursor(self, key: Key) -> str:
        return encode_cursor(key, self.binding)


def binding_for(query: str | None, sort_key: str, reverse: bool) -> str:
    return hashlib.sha1(f"{query or ''}|{sort_key}|{reverse}".encode()).hexdigest()[:16]


def encode_cursor(key: Key, binding: str) -> str:
    raw = json.dumps({"last_value": list(key), "b": binding}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, binding: str) -> Key:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key, issued_for = tuple(payload["last_value"]), payload["b"]
    except (ValueError, KeyError, TypeError):
        raise PagingError(f"Invalid cursor '{cursor}'.") from None
    if issued_for != binding:
        raise PagingError("Invalid cursor for current pagination sort.")
    return key


def _walk(index: SortedIndex[T], cursor: Key | None, ascending: bool) -> Iterator[int]:
    """Positions strictly beyond `cursor` in the given physical direction."""
    size = len(index.keys)
    if ascending:
        start = bisect_right(index.keys, cursor) if cursor is not None else 0
        return iter(range(start, size))
    start = bisect_left(index.keys, cursor) - 1 if cursor is not None else size - 1
    return iter(range(start, -1, -1))


def _collect(
    index: SortedIndex[T],
    start: Key | None,
    bound: Key | None,
    ascending: bool,
    matches: Callable[[T], bool],
    limit: int,
) -> list[tuple[Key, T]]:
    found: list[tuple[Key, T]] = []
    for position in _walk(index, start, ascending):
        key = index.keys[position]
        if bound is not None and (key >= bound if ascending else key <= bound):
            break
        item = index.items[position]
        if matches(item):
            found.append((key, item))
            if len(found) >= limit:
                break
    return found


def paginate(
    index: SortedIndex[T], matches: Callable[[T], bool], request: PageRequest, duplicate: bool = False
) -> Page[T]:
    """One page. `duplicate` repeats the record at the `after` cursor (the duplicate-across-pages fault)."""
    after = decode_cursor(request.after, request.binding) if request.after else None
    before = decode_cursor(request.before, request.binding) if request.before else None
    forward = not request.reverse  # physical direction of the logical "next"
    if request.last is not None and request.first is None:
        found = _collect(index, before, after, not forward, matches, request.last + 1)
        has_previous = len(found) > request.last
        entries = list(reversed(found[: request.last]))
        has_next = before is not None and bool(_collect(index, before, None, forward, matches, 1))
        return Page(entries, has_next, has_previous, request.binding)
    size = request.first if request.first is not None else len(index.keys)
    found = _collect(index, after, before, forward, matches, size + 1)
    has_next = len(found) > size
    entries = found[:size]
    if duplicate and after is not None:
        position = bisect_left(index.keys, after)
        if position < len(index.keys) and index.keys[position] == after:
            entries = [(after, index.items[position]), *entries][:size]
    has_previous = after is not None and bool(_collect(index, after, None, not forward, matches, 1))
    return Page(entries, has_next, has_previous, request.binding)
