"""Query-string and body parsing shared by every Brevo route: pages, sorting, date filters, JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from starlette.requests import Request

from simulators.brevo.errors import BrevoError, invalid
from simulators.brevo.times import parse_datetime_param


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int
    descending: bool

    def cut(self, ids: list[Any]) -> list[Any]:
        """This page of `ids` (given in creation order) in the requested order: O(page)."""
        total = len(ids)
        if not self.descending:
            return ids[self.offset : self.offset + self.limit]
        stop = total - self.offset
        start = max(0, stop - self.limit)
        return ids[start:stop][::-1] if stop > 0 else []


def _integer(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(f"{name} must be an integer") from None
    if value < 0:
        raise BrevoError(400, "out_of_range", f"{name} must not be negative")
    return value


def page_params(request: Request, *, cap: int, default: int) -> Page:
    """`limit` (default and per-endpoint cap), `offset`, `sort` (creation order, default desc)."""
    limit = _integer(request, "limit", default)
    if limit > cap:
        raise BrevoError(400, "out_of_range", "Limit exceeds max value")
    offset = _integer(request, "offset", 0)
    sort = request.query_params.get("sort", "desc")
    if sort not in ("asc", "desc"):
        raise invalid("sort must be asc or desc")
    return Page(limit, offset, sort == "desc")


def since_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    return None if raw is None else parse_datetime_param(name, raw)


Moment = TypeVar("Moment")


def window_param(request: Request, parse: Callable[[str, str], Moment]) -> tuple[Moment, Moment] | None:
    """`startDate`/`endDate`: both or neither (Brevo: "mandatory if the other is used"), in order."""
    start = request.query_params.get("startDate")
    end = request.query_params.get("endDate")
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise invalid("startDate and endDate must be passed together")
    window = parse("startDate", start), parse("endDate", end)
    if window[0] > window[1]:  # type: ignore[operator]
        raise invalid("startDate must be lower than or equal to endDate")
    return window


def int_list_param(request: Request, name: str) -> list[int] | None:
    """`listIds=2&listIds=3` or `listIds=2,3`."""
    raws = request.query_params.getlist(name)
    if not raws:
        return None
    try:
        return [int(part) for raw in raws for part in raw.split(",")]
    except ValueError:
        raise invalid(f"{name} must be integers") from None


def bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return False
    if raw not in ("true", "false"):
        raise invalid(f"{name} must be true or false")
    return raw == "true"


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying what is wrong with it."""
    raw = await request.body()
    if not raw:
        raise BrevoError(400, "missing_parameter", "Request body is required")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BrevoError(400, "bad_request", f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BrevoError(400, "bad_request", "Request body must be a JSON object")
    return body
