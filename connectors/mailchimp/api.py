"""Mailchimp Marketing API v3 plumbing shared by every stream and the push target.

One classification function (`classify`) for every call; the base URL from the key's data center;
the connection cap from `connectors.limits`; a limiter that pauses everyone after a throttling answer
(Mailchimp sends no Retry-After, so the pause backs off exponentially from 1 s to 60 s); and the
timestamp helpers the incremental windows need (seconds resolution, always URL-encoded ISO 8601).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from connectors.base import ConnectorSettings, EventSink, SkippedRecord
from connectors.http import ConcurrencyLimiter, HttpClient, Outcome, RetryPolicy, Verdict, json_body
from connectors.limits import MAILCHIMP_DEFAULT_CONNECTIONS, MAILCHIMP_MAX_CONNECTIONS

KEY_PATTERN = re.compile(r"^[0-9a-f]{32}-([a-z]+[0-9]+)$")
R = TypeVar("R")
LIMIT_KEY = "mailchimp"
MAX_PAGE = 1000
THROTTLE_START_SECONDS = 1.0
THROTTLE_CAP_SECONDS = 60.0
RETRY = RetryPolicy(max_attempts=8, initial_backoff=THROTTLE_START_SECONDS, max_backoff=THROTTLE_CAP_SECONDS)
MEMBER_GONE = "member gone (404: archived, deleted or never in this audience)"
_EMAILS = re.compile(r"[^\s@\"']+@[^\s@\"']+")
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_RECORD_STATUSES = frozenset({400, 404, 405, 414, 422, 426})


def scrub(text: str) -> str:
    """Vendor messages quote addresses ("x@y is already a list member"): never let one reach a log."""
    return _EMAILS.sub("<email>", text)


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    """The problem+json body, or None when the answer has none (the edge's bare 403, S3 errors)."""
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return None
    return body if isinstance(body, dict) and "status" in body and "title" in body else None


def _describe(problem: Mapping[str, Any]) -> str:
    fields = "; ".join(
        f"{e.get('field') or '?'}: {e.get('message') or ''}".strip()
        for e in problem.get("errors") or []
        if isinstance(e, Mapping)
    )
    text = f"{problem.get('title', '')}: {problem.get('detail', '')}"
    return scrub(f"{text} [{fields}]" if fields else text)


def describe_body(text: Any) -> str:
    """A batch operation's `response` (a JSON string) described like a direct error."""
    try:
        body = json.loads(text) if isinstance(text, str | bytes) else text
    except ValueError:
        return "unreadable response"
    return _describe(body) if isinstance(body, dict) else "no problem document"


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


def classify(response: httpx.Response) -> Verdict:
    """What a Mailchimp answer means (notes sec. 5); the one classification used by every call."""
    status = response.status_code
    if status < 400:
        return Verdict(Outcome.OK)
    problem = _problem(response)
    message = _describe(problem) if problem else f"HTTP {status} without a problem document"
    if status == 429:
        return Verdict(Outcome.RATE_LIMITED, _retry_after(response), message)
    if status == 403 and problem is None:
        if b"<Error>" in response.content:  # the signed batch-results URL expired or was altered
            return Verdict(Outcome.FATAL, None, "batch results link refused: " + response.text[:200])
        return Verdict(Outcome.RATE_LIMITED, None, "bare 403 from the edge (throttling)")
    if status in (401, 403):
        return Verdict(Outcome.AUTH_FAILED, None, f"authentication failed: {message}")
    if status == 503 and problem and "compliance" in str(problem.get("title", "")).lower():
        return Verdict(Outcome.FATAL, None, message)
    if status in _RETRY_STATUSES:
        return Verdict(Outcome.RETRY, None, message)
    if status in _RECORD_STATUSES:
        return Verdict(Outcome.RECORD_REJECTED, None, message)
    return Verdict(Outcome.FATAL, None, message)


def is_throttle(response: httpx.Response) -> bool:
    return response.status_code == 429 or (response.status_code == 403 and _problem(response) is None)


class ThrottleLimiter(ConcurrencyLimiter):
    """The account's connection cap, plus a shared pause after every throttling answer.

    Mailchimp's 429 carries no Retry-After, so without this the other in-flight workers would keep
    knocking while one backs off. The pause doubles per consecutive throttle (1 s .. 60 s) and resets
    on the first success.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.throttled = 0
        self._streak = 0

    def observe(self, response: httpx.Response) -> None:
        if not is_throttle(response):
            if response.status_code < 400:
                self._streak = 0
            return
        self.throttled += 1
        if time.monotonic() < self._resume_at:
            return  # sent before the current pause began: the same episode, do not escalate
        told = _retry_after(response)
        if told is not None:  # the vendor said how long: wait exactly that (capped)
            self.pause(min(THROTTLE_CAP_SECONDS, told))
            return
        self.pause(min(THROTTLE_CAP_SECONDS, THROTTLE_START_SECONDS * 2**self._streak))
        self._streak += 1


def data_center(api_key: str) -> str:
    match = KEY_PATTERN.match(api_key.strip())
    if not match:
        raise ValueError("mailchimp api_key must look like <32 hex characters>-<dc>, e.g. ...-us21")
    return match[1]


def max_connections(settings: ConnectorSettings) -> int:
    value = int(settings.options.get("max_connections", MAILCHIMP_DEFAULT_CONNECTIONS))
    if not 1 <= value <= MAILCHIMP_MAX_CONNECTIONS:
        raise ValueError(
            f"connector {settings.name}: options.max_connections must be 1..{MAILCHIMP_MAX_CONNECTIONS} "
            f"(Mailchimp allows {MAILCHIMP_MAX_CONNECTIONS} simultaneous connections per account), "
            f"got {value}"
        )
    return value


def build_client(settings: ConnectorSettings, sink: EventSink | None) -> tuple[HttpClient, ThrottleLimiter]:
    api_key = settings.secret("api_key")
    dc = data_center(api_key)
    base_url = (settings.base_url or f"https://{dc}.api.mailchimp.com/3.0").rstrip("/") + "/"
    connections = max_connections(settings)
    limiter = ThrottleLimiter(connections)
    client = HttpClient(
        name=settings.name,
        base_url=base_url,
        classify=classify,
        limiter=limiter,
        auth=httpx.BasicAuth("espd", api_key),
        headers={"Accept": "application/json"},
        timeout_seconds=settings.timeout_seconds,
        max_connections=connections,
        retry=RETRY,
        sink=sink,
    )
    return client, limiter


async def get_json(client: HttpClient, path: str, **params: Any) -> dict[str, Any]:
    response = await client.request("GET", path.lstrip("/"), params=params or None, limit_key=LIMIT_KEY)
    body = json_body(response)
    if not isinstance(body, dict):
        raise ValueError(f"mailchimp {path}: expected a JSON object")
    return body


@dataclass(frozen=True, slots=True)
class StreamContext:
    """What every stream of one connector shares: its client, name and incremental settings."""

    client: HttpClient
    source: str
    lookback: timedelta
    settle: timedelta  # T_end = sync start - settle: Mailchimp's listings lag the writes
    page_size: int
    list_id: str | None

    def t_end(self, sync_started_at: datetime) -> datetime:
        """The run's fixed upper bound: never after the sync start, never in the future."""
        now = min(sync_started_at, datetime.now(UTC)) - self.settle
        return now.astimezone(UTC).replace(microsecond=0)

    @property
    def overlap(self) -> int:
        """Rows re-read per offset page so shifts while paging never skip one (notes sec. 3)."""
        return min(100, self.page_size // 10)


async def offset_pages(
    ctx: StreamContext, path: str, key: str, params: Mapping[str, Any], offset: int = 0
) -> AsyncIterator[tuple[list[dict[str, Any]], int | None]]:
    """Pages of an offset collection with an overlapping stride: (items, next offset or None)."""
    stride = ctx.page_size - ctx.overlap
    while True:
        body = await get_json(ctx.client, path, count=ctx.page_size, offset=offset, **params)
        items = [i for i in body.get(key) or [] if isinstance(i, dict)]
        total = int(body.get("total_items") or 0)
        done = len(items) < ctx.page_size or offset + ctx.page_size >= total
        yield items, None if done else offset + stride
        if done:
            return
        offset += stride


async def collect(client: HttpClient, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a small, stable collection (audiences, stores, merge fields, campaigns)."""
    items: list[dict[str, Any]] = []
    while True:
        body = await get_json(client, path, count=MAX_PAGE, offset=len(items), **params)
        page = [i for i in body.get(key) or [] if isinstance(i, dict)]
        items.extend(page)
        if len(page) < MAX_PAGE or len(items) >= int(body.get("total_items") or 0):
            return items


async def audience_ids(client: HttpClient, list_id: str | None) -> list[str]:
    """The configured audience, or every audience of the account."""
    if list_id:
        return [list_id]
    lists = await collect(client, "lists", "lists", fields="lists.id,total_items")
    return [str(item["id"]) for item in lists if item.get("id")]


def convert(
    stream: str, items: Iterable[dict[str, Any]], build: Callable[[dict[str, Any]], R | list[R]], id_key: str
) -> tuple[list[R], list[SkippedRecord]]:
    """Canonical records of a page; a vendor record that does not validate is skipped, not fatal."""
    records: list[R] = []
    skipped: list[SkippedRecord] = []
    for item in items:
        try:
            built = build(item)
            records.extend(built if isinstance(built, list) else [built])
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
            vendor_id = item.get(id_key) if isinstance(item, dict) else None
            skipped.append(SkippedRecord(stream, str(vendor_id) if vendor_id else None, skip_reason(exc)))
    return records, skipped


def iso(moment: datetime) -> str:
    """Seconds resolution with an explicit offset; httpx URL-encodes the '+' as %2B."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def skip_reason(error: Exception) -> str:
    """Why a vendor record was skipped: field paths and messages only (pydantic's inputs may be emails)."""
    if not isinstance(error, ValidationError):
        return f"unreadable record ({type(error).__name__})"
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())


def parse_time(value: Any) -> datetime | None:
    """A vendor timestamp, or None for empty/invalid ones (the record decides whether that is fatal)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return None if parsed.tzinfo is None else parsed.astimezone(UTC)  # naive: rejected, not guessed
