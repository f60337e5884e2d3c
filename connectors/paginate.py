"""One paginator per pagination style, shared by every connector.

A paginator only reads a response body and says what the next request is (or that there is none);
the connector decides what a page means. Styles: a cursor link in the body (Klaviyo's
`links.next`), offset + count with an optional overlapping stride (Mailchimp, Brevo), and GraphQL
connections with `pageInfo` (Shopify).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
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
