"""Shopify Admin GraphQL transport: the one classification function, the cost bucket's feed, and
`ShopifyApi.call`, through which every query and mutation of the connector goes.

Shopify answers almost every problem with HTTP 200 and an `errors` list (throttling, missing scopes,
validation), so a status code alone says little: `classify` reads the body too, and also treats a
mutation payload's `userErrors` and any `extensions.search` warning (a filter term the server
ignored, which would silently widen a pull) as failures.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.base import EventSink
from connectors.http import OK, CostBucket, HttpClient, Outcome, Verdict, json_body
from connectors.limits import SHOPIFY_CALLS_IN_FLIGHT, SHOPIFY_MAX_QUERY_COST, SHOPIFY_RESTORE_RATE

LIMIT_KEY = "graphql"
RETRYABLE_USER_ERRORS = frozenset({"INTERNAL_ERROR"})


@dataclass(frozen=True, slots=True)
class Document:
    """A GraphQL document with its requested cost (notes §6), reserved in the bucket before sending.

    The cost is computed by hand from the selection and checked against the simulator's
    `requestedQueryCost` in tests; declaring it here is what lets espd pace ahead of the server.
    """

    name: str
    text: str
    cost: int
    mutation: bool = False

    def __post_init__(self) -> None:
        if self.cost > SHOPIFY_MAX_QUERY_COST:
            raise ValueError(f"query {self.name} costs {self.cost} > {SHOPIFY_MAX_QUERY_COST}")


def _body(response: httpx.Response) -> Any:
    try:
        return json_body(response)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _is_json(response: httpx.Response) -> bool:
    mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def throttle_status(response: httpx.Response) -> Mapping[str, float] | None:
    """`extensions.cost.throttleStatus` of a GraphQL answer (the `CostBucket`'s status reader)."""
    if not _is_json(response):
        return None
    body = _body(response)
    cost = body.get("extensions", {}).get("cost") if isinstance(body, dict) else None
    status = cost.get("throttleStatus") if isinstance(cost, dict) else None
    return status if isinstance(status, dict) else None


def _throttled_wait(body: dict[str, Any]) -> float:
    """ceil((requestedQueryCost − currentlyAvailable) / restoreRate) seconds, at least one."""
    cost = body.get("extensions", {}).get("cost", {})
    status = cost.get("throttleStatus", {})
    rate = float(status.get("restoreRate") or 1.0)
    missing = float(cost.get("requestedQueryCost") or 0) - float(status.get("currentlyAvailable") or 0)
    return float(max(1, math.ceil(missing / rate)))


def _http_verdict(response: httpx.Response) -> Verdict:
    status = response.status_code
    body = _body(response) if _is_json(response) else None
    detail = body.get("errors") if isinstance(body, dict) else None
    text = str(detail) if detail else response.text[:200]
    if body is None and status in (403, 404):  # the file storage behind a bulk result URL
        return Verdict(Outcome.FATAL, message=f"bulk result file unavailable (HTTP {status}): {text}")
    if status == 401:
        return Verdict(Outcome.AUTH_FAILED, message=f"access token rejected: {text}")
    if status in (402, 423):
        state = "frozen (unpaid)" if status == 402 else "locked"
        return Verdict(Outcome.FATAL, message=f"shop is {state}; pausing this shop: {text}")
    if status == 403:
        return Verdict(Outcome.AUTH_FAILED, message=f"app uninstalled or not permitted: {text}")
    if status == 404:
        return Verdict(Outcome.FATAL, message=f"wrong shop, API version or URL: {text}")
    if status == 429:
        return Verdict(Outcome.RATE_LIMITED, _retry_after(response), f"HTTP 429: {text}")
    if status >= 500:
        return Verdict(Outcome.RETRY, _retry_after(response), f"HTTP {status}: {text}")
    return Verdict(Outcome.FATAL, message=f"unexpected HTTP {status}: {text}")


def _errors_verdict(body: dict[str, Any], errors: list[Any]) -> Verdict:
    entries = [e for e in errors if isinstance(e, dict)] or [{"message": str(errors)}]
    codes = {str((e.get("extensions") or {}).get("code", "")) for e in entries}
    first = entries[0]
    where = f" at {first['path']}" if first.get("path") else ""
    message = f"{first.get('message', '')}{where}"
    if "THROTTLED" in codes:
        return Verdict(Outcome.RATE_LIMITED, _throttled_wait(body), "THROTTLED")
    if "ACCESS_DENIED" in codes:
        denied = next(e for e in entries if (e.get("extensions") or {}).get("code") == "ACCESS_DENIED")
        scope = str((denied.get("extensions") or {}).get("requiredAccess", "")).strip("`")
        named = f"missing scope {scope}: " if scope else ""
        return Verdict(Outcome.AUTH_FAILED, message=f"access denied, {named}{denied.get('message', '')}")
    if "MAX_COST_EXCEEDED" in codes:
        return Verdict(Outcome.FATAL, message=f"bug: query over the cost cap: {message}")
    if codes == {"INTERNAL_SERVER_ERROR"}:
        return Verdict(Outcome.RETRY, message=f"Shopify internal error: {message}")
    return Verdict(Outcome.FATAL, message=f"bug: invalid GraphQL request: {message}")


def user_errors(data: Any) -> list[dict[str, Any]]:
    """Every `userErrors` entry of every mutation payload in `data`."""
    if not isinstance(data, dict):
        return []
    return [
        error
        for payload in data.values()
        if isinstance(payload, dict)
        for error in payload.get("userErrors") or []
        if isinstance(error, dict)
    ]


def classify(response: httpx.Response) -> Verdict:
    """What a Shopify response means. The one classification used by every call of this connector."""
    if response.status_code != 200:
        return _http_verdict(response)
    if not _is_json(response):
        return OK  # a bulk result file (JSONL)
    body = _body(response)
    if not isinstance(body, dict):
        return Verdict(Outcome.RETRY, message="unreadable JSON in a 200 answer")
    errors = body.get("errors")
    if errors:
        return _errors_verdict(body, errors if isinstance(errors, list) else [errors])
    search = (body.get("extensions") or {}).get("search")
    if search:
        return Verdict(Outcome.FATAL, message=f"bug: search filter term ignored by Shopify: {search}")
    problems = user_errors(body.get("data"))
    if problems:
        codes = {p.get("code") for p in problems}
        summary = "; ".join(f"{p.get('code')}: {p.get('message')} at {p.get('field')}" for p in problems[:3])
        outcome = Outcome.RETRY if codes <= RETRYABLE_USER_ERRORS else Outcome.RECORD_REJECTED
        return Verdict(outcome, message=f"userErrors: {summary}")
    if body.get("data") is None:
        return Verdict(Outcome.RETRY, message="200 answer without data")
    return OK


class ShopifyApi:
    """One shop's GraphQL endpoint behind the shared HTTP layer and a paced cost bucket."""

    def __init__(
        self,
        *,
        name: str,
        endpoint: str,
        token: str,
        plan: str = "standard",
        timeout_seconds: float = 30.0,
        sink: EventSink | None = None,
    ) -> None:
        if plan not in SHOPIFY_RESTORE_RATE:
            raise ValueError(
                f"connector {name}: unknown Shopify plan {plan!r} ({sorted(SHOPIFY_RESTORE_RATE)})"
            )
        self.endpoint = endpoint
        self.bucket = CostBucket(SHOPIFY_RESTORE_RATE[plan])
        self.bucket.status_reader = self._bucket_status
        assumed = {"maximumAvailable": self.bucket.capacity, "currentlyAvailable": self.bucket.capacity}
        self._last_status = ({**assumed, "restoreRate": self.bucket.restore_rate}, time.monotonic())
        self.http = HttpClient(
            name=name,
            base_url=endpoint,
            classify=classify,
            limiter=self.bucket,
            headers={"X-Shopify-Access-Token": token, "Content-Type": "application/json"},
            timeout_seconds=timeout_seconds,
            max_connections=SHOPIFY_CALLS_IN_FLIGHT,
            sink=sink,
        )

    def _bucket_status(self, response: httpx.Response) -> Mapping[str, float]:
        """The server's bucket after this response. An answer without `extensions.cost` (429, 5xx,
        401) was charged nothing, so it reports the last known status refilled since: the points
        reserved for it come back instead of being lost to every failed attempt."""
        status = throttle_status(response)
        now = time.monotonic()
        if status is not None:
            self._last_status = (status, now)
            return status
        last, seen = self._last_status
        refilled = float(last["currentlyAvailable"]) + (now - seen) * float(last["restoreRate"])
        return {**last, "currentlyAvailable": min(float(last["maximumAvailable"]), refilled)}

    async def call(self, document: Document, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run a document; return its `data` (errors of every kind were raised by `classify`)."""
        response = await self.http.request(
            "POST",
            self.endpoint,
            limit_key=LIMIT_KEY,
            cost=document.cost,
            idempotent=True,  # espd's mutations are upserts or fail with TAKEN when repeated
            json={"query": document.text, "variables": dict(variables or {}), "operationName": document.name},
        )
        return json_body(response)["data"]

    async def download(self, url: str) -> bytes:
        """A bulk result file: outside the cost bucket, so it reserves nothing."""
        response = await self.http.request("GET", url, limit_key=LIMIT_KEY, cost=0)
        return response.content

    async def aclose(self) -> None:
        await self.http.aclose()
