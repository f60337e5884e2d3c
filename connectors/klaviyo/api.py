"""Klaviyo transport: headers, the one response classifier, the HTTP client and filter values.

Every Klaviyo call goes through `make_client`'s `HttpClient`, so authentication (`Klaviyo-API-Key`),
the pinned `revision`, the per-operation rate windows of `connectors.limits.KLAVIYO` and `classify`
apply to all of them without any call site repeating them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import ValidationError

from connectors.base import ConnectorSettings, EventSink
from connectors.http import OK, HttpClient, Outcome, RetryPolicy, Verdict, window_limiter
from connectors.limits import KLAVIYO

BASE_URL = "https://a.klaviyo.com"
REVISION = "2026-07-15"
JSONAPI = "application/vnd.api+json"
DEFAULT_RETRY_AFTER = 1.0

_EMAIL_LIKE = re.compile(r"[^\s@'\"]+@[^\s@'\"]+")
# Cloudflare's edge answers some requests with an HTML challenge (notes section 4): transient, retry.
_EDGE_HEADER = "cf-mitigated"
# Writes whose 404 means "this record's profile is gone", not a wrong endpoint.
_RECORD_PATHS = ("/api/profile-import", "/api/profiles/")


def redact(text: str) -> str:
    """Vendor messages may quote an address; espd never logs one."""
    return _EMAIL_LIKE.sub("<email>", text)


def first_error(response: httpx.Response) -> dict[str, Any]:
    """The first entry of Klaviyo's `errors` envelope, or {} when the body is not that envelope."""
    try:
        body = response.json()
    except ValueError:
        return {}
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0]
    return {}


def _message(error: dict[str, Any], fallback: str) -> str:
    code, detail = error.get("code"), error.get("detail")
    source = error.get("source") if isinstance(error.get("source"), dict) else {}
    where = source.get("pointer") or source.get("parameter")
    text = f"{code}: {detail}" if code or detail else fallback
    return redact(f"{text} (at {where})" if where else text)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", DEFAULT_RETRY_AFTER)))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _about_a_record(response: httpx.Response, error: dict[str, Any]) -> bool:
    """A write refused because of what one record holds (its body pointer, its profile id)."""
    if response.request.method not in ("POST", "PATCH"):
        return False
    source = error.get("source") if isinstance(error.get("source"), dict) else {}
    if response.status_code in (400, 409, 413, 422):
        return str(source.get("pointer", "")).startswith("/data")
    path = response.request.url.path
    return response.status_code == 404 and any(path.startswith(p) for p in _RECORD_PATHS)


def classify(response: httpx.Response) -> Verdict:
    """What a Klaviyo response means (notes section 4); used for every call the connector makes."""
    status = response.status_code
    if status < 300:
        return OK
    if status == 429:
        return Verdict(Outcome.RATE_LIMITED, _retry_after(response), "throttled")
    error = first_error(response)
    if status == 403 and (response.headers.get(_EDGE_HEADER) or not error):
        return Verdict(Outcome.RETRY, None, "edge block (Cloudflare challenge page)")
    if status in (401, 403):
        return Verdict(Outcome.AUTH_FAILED, None, _message(error, f"authorization failed (HTTP {status})"))
    if status >= 500:
        return Verdict(Outcome.RETRY, None, _message(error, f"server error (HTTP {status})"))
    message = _message(error, f"HTTP {status}")
    if _about_a_record(response, error):
        return Verdict(Outcome.RECORD_REJECTED, None, message)
    return Verdict(Outcome.FATAL, None, message)


def make_client(settings: ConnectorSettings, sink: EventSink | None) -> HttpClient:
    """The connector's single HTTP client, rate limited per operation from the documented table."""
    options = settings.options
    return HttpClient(
        name=settings.name,
        base_url=settings.base_url or BASE_URL,
        classify=classify,
        limiter=window_limiter(settings, KLAVIYO),
        headers={
            "Authorization": f"Klaviyo-API-Key {settings.secret('api_key')}",
            "revision": str(options.get("revision", REVISION)),
            "accept": JSONAPI,
        },
        timeout_seconds=settings.timeout_seconds,
        max_connections=int(options.get("max_connections", 20)),
        retry=RetryPolicy(max_attempts=int(options.get("max_attempts", 8))),
        sink=sink,
    )


def filter_time(moment: datetime) -> str:
    """A datetime as Klaviyo's filter grammar wants it: UTC, unquoted, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """A vendor timestamp, or None when it is missing or malformed (the record is skipped elsewhere)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def capped(moment: datetime, sync_started_at: datetime, margin: timedelta) -> datetime:
    """A bookmark never beyond the sync's start minus the margin, nor in the future."""
    now = datetime.now(UTC)
    return min(moment, sync_started_at - margin, now - margin)


def skip_reason(exc: Exception) -> str:
    """Why a vendor record was skipped: the failing field and check, never the value (it may be an email)."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"invalid {'.'.join(str(p) for p in first['loc']) or 'record'}: {first['type']}"
    return f"not a usable resource ({type(exc).__name__})"
