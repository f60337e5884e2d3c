"""One paginator per pagination style, shared by every connector.

A paginator only reads a response body and says what the next request is (or that there is none);
the connector decides what a page means. Styles: a cursor link in the body (Klaviyo's
`links.next`), offset + count with an optional overlapping stride, offset listings whose page
boundaries are checked instead of re-read (`checked_offset_pages`: Mailchimp members, Brevo), and
GraphQL connections with `pageInfo` (Shopify).
"""

from __future__ import annotations

import abc
import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from connectors.http import HttpClient, json_body


@dataclass(frozen=True, slots=True)
class PageRequest:
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    method: str = "GET"


def dig(body: Any, path: Sequence[str | int]) -> Any:
    """body[path[0]][path[1]]…, or None where a step is missing."""
    for step in path:
        if isinstance(body, dict):
            body = body.get(step)  # type: ignore[arg-type]
        elif isinstance(body, list) and isinstance(step, int) and -len(body) <= step < len(body):
            body = body[step]
        else:
            return None
    return body


class Paginator(abc.ABC):
    @abc.abstractmethod
    def next_request(self, request: PageRequest, body: Any, n_records: int) -> PageRequest | None:
        """The request for the page after `body`, or None when `body` was the last page."""


class CursorLinkPaginator(Paginator):
    """Follow an opaque link exactly as given (it already carries filter, sort and page size)."""

    def __init__(self, next_path: Sequence[str] = ("links", "next")) -> None:
        self.next_path = tuple(next_path)

    def next_request(self, request: PageRequest, body: Any, n_records: int) -> PageRequest | None:
        link = dig(body, self.next_path)
        return PageRequest(url=link, method=request.method) if isinstance(link, str) and link else None


class OffsetPaginator(Paginator):
    """Offset paging. `stride` < `limit` re-reads `limit - stride` rows per page, so rows that shift
    left while paging (deletions, in an unsnapshotted listing) are read again instead of skipped."""

    def __init__(
        self,
        *,
        limit: int,
        limit_param: str = "count",
        offset_param: str = "offset",
        stride: int | None = None,
        total_path: Sequence[str] | None = None,
    ) -> None:
        if stride is not None and not 0 < stride <= limit:
            raise ValueError("stride must be between 1 and limit")
        self.limit = limit
        self.limit_param = limit_param
        self.offset_param = offset_param
        self.stride = stride or limit
        self.total_path = tuple(total_path) if total_path else None

    def first(self, request: PageRequest, offset: int = 0) -> PageRequest:
        params = {**request.params, self.limit_param: self.limit, self.offset_param: offset}
        return replace(request, params=params)

    def next_request(self, request: PageRequest, body: Any, n_records: int) -> PageRequest | None:
        if n_records < self.limit:
            return None
        offset = int(request.params.get(self.offset_param, 0)) + self.stride
        total = dig(body, self.total_path) if self.total_path else None
        if isinstance(total, int) and offset >= total:
            return None
        return replace(request, params={**request.params, self.offset_param: offset})


class GraphQLPaginator(Paginator):
    """Relay connections: pass `pageInfo.endCursor` back as the `after` variable."""

    def __init__(self, connection_path: Sequence[str], cursor_variable: str = "after") -> None:
        self.connection_path = tuple(connection_path)
        self.cursor_variable = cursor_variable

    def next_request(self, request: PageRequest, body: Any, n_records: int) -> PageRequest | None:
        info = dig(body, (*self.connection_path, "pageInfo")) or {}
        if not info.get("hasNextPage") or not info.get("endCursor"):
            return None
        payload = dict(request.json or {})
        payload["variables"] = {**payload.get("variables", {}), self.cursor_variable: info["endCursor"]}
        return replace(request, json=payload)


async def iterate_pages(
    client: HttpClient,
    first: PageRequest,
    paginator: Paginator,
    *,
    limit_key: str,
    count_records: Any,
    cost: float = 1.0,
) -> AsyncIterator[tuple[PageRequest, Any]]:
    """Yield (request, parsed body) for every page until the paginator says there is no next.

    `count_records(body) -> int` tells the paginator how many records a page held.
    """
    request: PageRequest | None = first
    while request is not None:
        response = await client.request(
            request.method,
            request.url,
            params=request.params or None,
            json=request.json,
            limit_key=limit_key,
            cost=cost,
        )
        body = json_body(response)
        yield request, body
        request = paginator.next_request(request, body, count_records(body))


@dataclass(frozen=True, slots=True)
class OffsetPage:
    """One answer of an offset listing: where it was asked, what came back, the total it reported."""

    offset: int
    items: list[Any]
    total: int | None


# Does `current` continue `previous` with nothing lost in between? Each page is a snapshot of the
# listing at its own instant, so a proof must hold whatever changed between the two requests.
Proof = Callable[[OffsetPage, OffsetPage], bool]


def keys_overlap(key: Callable[[Any], Any]) -> Proof:
    """`current` starts strictly before `previous` ends in the sort key.

    A sorted page holds every row whose key lies strictly between its first and last keys, so two
    pages whose key ranges overlap cover everything between them, in whatever order ties come back.
    """

    def proves(previous: OffsetPage, current: OffsetPage) -> bool:
        first, last = key(current.items[0]), key(previous.items[-1])
        return first is not None and last is not None and first < last

    return proves


def same_boundary_row(identity: Callable[[Any], Any]) -> Proof:
    """`current` (asked one row before `previous` ended) starts with `previous`'s last row.

    That row sits at the same position in both snapshots, so no row before it left the listing in
    between: for listings whose rows never move (Brevo's creation order), or move only to the end
    (Mailchimp's `last_changed` order), nothing after it was skipped. This assumes ties in the sort
    key come back in the same order on every request (an index order); `keys_overlap` does not.
    """

    def proves(previous: OffsetPage, current: OffsetPage) -> bool:
        mark = identity(previous.items[-1])
        return mark is not None and identity(current.items[0]) == mark

    return proves


def same_total(previous: OffsetPage, current: OffsetPage) -> bool:
    """Both pages report the same total, in a listing that can only shrink while it is read.

    For a closed window in the past (Mailchimp's `before_last_changed` before the run began) rows
    only leave, so equal totals mean the same rows at both instants: the pages are adjacent slices
    of one snapshot. Like `same_boundary_row`, this assumes ties come back in the same order.
    """
    return previous.total is not None and previous.total == current.total


def meeting_on_a_row(
    limit: int, key: Callable[[Any], Any], identity: Callable[[Any], Any], parallel: int, first_width: int = 1
) -> CheckedOffsets:
    """Pages `limit - 1` apart that must meet on their shared row or overlap in the sort key: for
    listings whose rows only leave or move to the end while they are read (one row per page spent)."""
    proves = any_of(keys_overlap(key), same_boundary_row(identity))
    return CheckedOffsets(limit, limit - 1, proves, parallel, first_width)


def any_of(*proofs: Proof) -> Proof:
    def proves(previous: OffsetPage, current: OffsetPage) -> bool:
        return any(proof(previous, current) for proof in proofs)

    return proves


@dataclass(frozen=True, slots=True)
class CheckedOffsets:
    """How to read an offset listing without an overlap re-read on every page.

    Pages are asked `stride` apart, up to `parallel` at a time (`first_width` before any answer has
    told the listing's size), and handed out in order. A page is accepted when it is the listing's
    first or `proves` that it continues the page before it; otherwise it is asked again further
    back (doubling the step) until it does, so rows shifted left by deletions are re-read only
    where a shift happened. Offset 0 always proves itself, so the repair ends.
    """

    limit: int
    stride: int
    proves: Proof
    parallel: int = 1
    first_width: int = 1

    def first_step_back(self) -> int:
        return max(2, self.limit // 10)

    def ends(self, page: OffsetPage) -> bool:
        """The page reached the listing's end at its instant (short, or the total says so)."""
        reported_end = page.total is not None and page.offset + len(page.items) >= page.total
        return len(page.items) < self.limit or reported_end


async def checked_offset_pages(
    fetch: Callable[[int], Awaitable[OffsetPage]],
    plan: CheckedOffsets,
    *,
    start: int = 0,
    previous: OffsetPage | None = None,
) -> AsyncIterator[OffsetPage]:
    """Accepted pages of a listing in order, from `start` (`previous`: the page before it, if known)."""
    ahead = _Prefetch(fetch, plan)
    offset, step_back = start, plan.first_step_back()
    try:
        while True:
            page = await ahead.take(offset)
            if previous is not None and page.offset > 0 and not (page.items and plan.proves(previous, page)):
                ahead.cancel()
                offset, step_back = max(0, page.offset - step_back), step_back * 2
                continue
            yield page
            if plan.ends(page):
                return
            previous, offset, step_back = page, page.offset + plan.stride, plan.first_step_back()
    finally:
        ahead.cancel()


class _Prefetch:
    """The next pages, asked at offsets known in advance and capped by the last reported total.

    A page that arrives frees its request slot at once (a done callback asks the next one), not
    when the reader gets to it: otherwise each of the `parallel` lanes would wait a page's parsing
    on every round trip. Answered pages wait in order, at most `parallel` more than are in flight.
    """

    def __init__(self, fetch: Callable[[int], Awaitable[OffsetPage]], plan: CheckedOffsets) -> None:
        self.fetch = fetch
        self.plan = plan
        self.ahead: deque[tuple[int, asyncio.Task[OffsetPage]]] = deque()
        self.total: int | None = None

    async def take(self, offset: int) -> OffsetPage:
        if self.ahead and self.ahead[0][0] != offset:
            self.cancel()
        if not self.ahead:
            self._ask(offset)
        self.fill()
        _offset, task = self.ahead.popleft()
        page = await task
        self.fill()
        return page

    def fill(self) -> None:
        width = max(1, self.plan.parallel if self.total is not None else self.plan.first_width)
        while self.ahead and len(self.ahead) < 2 * width:
            if sum(not task.done() for _, task in self.ahead) >= width:
                return
            at = self.ahead[-1][0] + self.plan.stride
            if self.total is not None and at >= self.total:
                return
            self._ask(at)

    def _ask(self, offset: int) -> None:
        task = asyncio.ensure_future(self.fetch(offset))
        task.add_done_callback(self._answered)
        self.ahead.append((offset, task))

    def _answered(self, task: asyncio.Task[OffsetPage]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        if (total := task.result().total) is not None:
            self.total = total
        self.fill()

    def cancel(self) -> None:
        for _, task in self.ahead:
            task.cancel()
        self.ahead.clear()
