"""Brevo API v3 plumbing shared by the streams and the push target.

One classification function (`classify`) for every call (notes/brevo.md sec. 5, on `errorModel`
codes and statuses, never on `message` text); one `WindowLimiter` keyed by endpoint family with
the RPS and RPH windows of the account's plan from `connectors.limits.BREVO`; and the timestamp
helpers the incremental recipe needs (milliseconds, `Z`, offsets parsed to UTC).

The contacts family (`/v3/contacts/*`) is one budget at Brevo, spent by pull, push and the
per-contact campaign stats alike. espd keeps it as ONE limiter key: within a connector the daemon's
stages run one after the other (pull, then push), so each gets the whole budget when it runs, and
when they do overlap the limiter's FIFO lock interleaves them request by request. A fixed 7/3 split
would cap a push running alone at 3 RPS (180 contacts/min) for no benefit.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.base import ConnectorSettings, EventSink
from connectors.http import HttpClient, Outcome, RetryPolicy, Verdict, json_body, window_limiter
from connectors.limits import BREVO

DEFAULT_BASE_URL = "https://api.brevo.com/v3"
CONTACTS = "contacts"  # /v3/contacts/*: pull, attribute writes, attribute definitions, campaignStats
OTHER = "other"  # GET /orders, /account, /emailCampaigns, /processes: 100 requests per HOUR (General)
TOO_EARLY_WAIT_SECONDS = 3.0  # 425: "contact still being processed, retry in a few seconds"
MIN_RATE_WAIT_SECONDS = 1.0  # a reset of "0" still means this second's window is spent
CONTACT_GONE = "contact gone (404): deleted at Brevo; purge it locally"
RETRY = RetryPolicy(max_attempts=8, initial_backoff=0.5, max_backoff=60.0)
_CONTACT_PATH = re.compile(r"/contacts/(?!attributes/|lists/|batch$|import$)[^/]+(/campaignStats)?$")
_EMAILS = re.compile(r"[^\s@\"']+@[^\s@\"']+")
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_RECORD_STATUSES = frozenset({400, 402, 403, 405, 409, 422})


def _error_model(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of an `errorModel` body; message scrubbed of addresses, for humans only."""
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return "", f"HTTP {response.status_code} without an errorModel body"
    return str(body.get("code") or ""), _EMAILS.sub("<email>", str(body.get("message") or ""))[:300]


def _reset_seconds(response: httpx.Response) -> float | None:
    raw = response.headers.get("x-sib-ratelimit-reset")
    try:
        return max(MIN_RATE_WAIT_SECONDS, float(raw)) if raw else None
    except ValueError:
        return None


def classify(response: httpx.Response) -> Verdict:
    """What a Brevo answer means; the one classification used by every Brevo call.

    429 waits `x-sib-ratelimit-reset` (the HTTP layer adds jitter and pauses every request) or, with
    no header, backs off exponentially. 404 on one contact is a record-level "contact gone"; any
    other 404 is a request espd should not have sent.
    """
    status = response.status_code
    if status < 400:
        return Verdict(Outcome.OK)
    code, message = _error_model(response)
    text = f"{code or 'no code'}: {message}"
    if status == 429:
        return Verdict(Outcome.RATE_LIMITED, _reset_seconds(response), text)
    if status == 401:
        return Verdict(Outcome.AUTH_FAILED, None, f"authentication failed (bad api-key or IP): {text}")
    if status == 425:
        return Verdict(Outcome.RETRY, TOO_EARLY_WAIT_SECONDS, text)
    if status in _RETRY_STATUSES:
        return Verdict(Outcome.RETRY, None, text)
    if status == 404 and _CONTACT_PATH.search(response.request.url.path):
        return Verdict(Outcome.RECORD_REJECTED, None, CONTACT_GONE)
    if status in _RECORD_STATUSES and response.request.method != "GET":
        return Verdict(Outcome.RECORD_REJECTED, None, text)
    return Verdict(Outcome.FATAL, None, text)


def build_client(settings: ConnectorSettings, sink: EventSink | None) -> HttpClient:
    """The connector's one HTTP client, limited per family by the plan's RPS and RPH windows."""
    plan = str(settings.options.get("plan", "general"))
    if plan not in BREVO:
        raise ValueError(
            f"connector {settings.name}: options.plan must be one of {sorted(BREVO)}, not {plan!r}"
        )
    return HttpClient(
        name=settings.name,
        base_url=(settings.base_url or DEFAULT_BASE_URL).rstrip("/") + "/",
        classify=classify,
        limiter=window_limiter(settings, BREVO[plan]),
        headers={
            "api-key": settings.secret("api_key"),
            "Accept": "application/json",
            "Content-Type": "application/json",
        },
        timeout_seconds=settings.timeout_seconds,
        max_connections=32,
        retry=RETRY,
        sink=sink,
    )


async def get_json(client: HttpClient, path: str, *, family: str, **params: Any) -> Any:
    response = await client.request("GET", path, params=params or None, limit_key=family)
    return json_body(response)


def wire_time(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:mm:ss.SSSZ` in UTC, as `modifiedSince` wants it (httpx URL-encodes the colons)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """A Brevo timestamp (`Z` or `+02:00`, with or without milliseconds) as an aware UTC datetime."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a zone: {text!r}")
    return moment.astimezone(UTC)
