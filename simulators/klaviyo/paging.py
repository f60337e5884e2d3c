"""Cursor pagination as Klaviyo does it: opaque `page[cursor]` values tied to the filter and sort they were
issued for, and pages cut from a list kept sorted by (sort key, id) so pages never overlap or skip.

A cursor is a signed token (HMAC with a per-simulator secret), so a tampered or hand-built cursor is a
400, and a cursor replayed with a different filter or sort is a 400 too. Each page costs O(page) once
the position is found by bisection, which keeps the simulator fast enough for benchmarks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from simulators.klaviyo.errors import KlaviyoError
from simulators.klaviyo.filters import Condition

T = TypeVar("T")
SortKey = tuple[Any, str]


def _encode_value(value: Any) -> Any:
    return {"d": value.isoformat()} if isinstance(value, datetime) else value


def _decode_value(value: Any) -> Any:
    return datetime.fromisoformat(value["d"]) if isinstance(value, dict) else value


def _bad_cursor(detail: str) -> KlaviyoError:
    return KlaviyoError(400, "invalid", f"Invalid page cursor: {detail}", parameter="page[cursor]")


class CursorCodec:
    """Signs and checks cursors; `context` is what the cursor is tied to (filter, sort, parent id)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self._secret, payload, hashlib.sha256).hexdigest()[:32]

    def encode(self, context: str, after: SortKey) -> str:
        payload = json.dumps({"c": context, "k": [_encode_value(after[0]), after[1]]}, separators=(",", ":"))
        raw = payload.encode() + b"." + self._sign(payload.encode()).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, context: str, cursor: str) -> SortKey:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            payload, signature = raw.rsplit(b".", 1)
        except ValueError as exc:
            raise _bad_cursor("not a cursor this API issued") from exc
        if not hmac.compare_digest(signature.decode("latin-1"), self._sign(payload)):
            raise _bad_cursor("not a cursor this API issued")
        decoded = json.loads(payload)
        if decoded["c"] != context:
            raise _bad_cursor("the cursor belongs to a different filter or sort; follow links.next as given")
        value, ident = decoded["k"]
        return _decode_value(value), ident


@dataclass(frozen=True)
class Bounds:
    """Range of the sort field implied by the filter (used to bisect; the filter still decides)."""

    low: Any = None
    high: Any = None


UNBOUNDED = Bounds()


def bounds_for(conditions: Sequence[Condition], field: str) -> Bounds:
    lows = [c.value for c in conditions if c.field == field and c.operator.startswith("greater")]
    highs = [c.value for c in conditions if c.field == field and c.operator.startswith("less")]
    return Bounds(max(lows) if lows else None, min(highs) if highs else None)


def page_slice(
    items: Sequence[T],
    sort_key: Callable[[T], SortKey],
    *,
    descending: bool,
    after: SortKey | None,
    keep: Callable[[T], bool],
    size: int,
    bounds: Bounds = UNBOUNDED,
) -> tuple[list[T], bool]:
    """Return up to `size` items after the cursor position that pass `keep`, and whether more follow.

    `items` is sorted ascending by `sort_key`; a descending sort walks it backwards, so ties on the sort
    value are broken by id in both directions.
    """

    def value_of(item: T) -> Any:
        return sort_key(item)[0]

    if descending:
        end = len(items)
        if bounds.high is not None:
            end = bisect_right(items, bounds.high, key=value_of)
        if after is not None:
            end = min(end, bisect_left(items, after, key=sort_key))
        indices: range = range(end - 1, -1, -1)
        past = (lambda v: v < bounds.low) if bounds.low is not None else None
    else:
        start = 0
        if bounds.low is not None:
            start = bisect_left(items, bounds.low, key=value_of)
        if after is not None:
            start = max(start, bisect_right(items, after, key=sort_key))
        indices = range(start, len(items))
        past = (lambda v: v > bounds.high) if bounds.high is not None else None
    page: list[T] = []
    for index in indices:
        item = items[index]
        if past is not None and past(value_of(item)):
            break
        if keep(item):
            if len(page) == size:
                return page, True
            page.append(item)
    return page, False
