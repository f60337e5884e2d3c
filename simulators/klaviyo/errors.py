"""Klaviyo's error responses: the JSON:API `errors` envelope, the throttled 429, and the Cloudflare HTML page.

The envelope follows the spec's `ClientError`/`ServerError` (id, code, title, detail, source) plus the
`status`, `links` and `meta` members real responses carry (notes section 4). A 429 carries `Retry-After`
and none of the `RateLimit-*` headers.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from starlette.responses import Response

JSONAPI = "application/vnd.api+json"

_TITLES = {
    400: "Invalid input.",
    401: "Authentication credentials were not provided.",
    403: "You do not have permission to perform this action.",
    404: "Not found.",
    405: "Method not allowed.",
    409: "Conflict.",
    413: "Request entity too large.",
    415: "Unsupported media type.",
    429: "Request was throttled.",
}


class KlaviyoError(Exception):
    """Raised anywhere in a request's handling; the app turns it into the errors envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        pointer: str | None = None,
        parameter: str | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.pointer = pointer
        self.parameter = parameter
        self.title = title or _TITLES.get(status, "A server error occurred.")

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "status": self.status,
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
            "source": {},
            "links": {},
            "meta": {},
        }
        if self.pointer is not None:
            error["source"]["pointer"] = self.pointer
        if self.parameter is not None:
            error["source"]["parameter"] = self.parameter
        return {"errors": [error]}

    def response(self) -> Response:
        return Response(json.dumps(self.to_json()), status_code=self.status, media_type=JSONAPI)


def invalid(detail: str, *, pointer: str | None = None, parameter: str | None = None) -> KlaviyoError:
    """The most common error: 400 `invalid` naming the offending body pointer or query parameter."""
    return KlaviyoError(400, "invalid", detail, pointer=pointer, parameter=parameter)


def throttled_response(retry_after: float) -> Response:
    """429 exactly as observed: the throttled envelope, integer `Retry-After`, no RateLimit-* headers."""
    seconds = max(1, math.ceil(retry_after))
    body = {
        "errors": [
            {
                "id": str(uuid.uuid4()),
                "status": 429,
                "code": "throttled",
                "title": "Request was throttled.",
                "detail": f"Request was throttled. Expected available in {seconds} seconds.",
                "source": {"pointer": "/data/"},
            }
        ]
    }
    return Response(
        json.dumps(body), status_code=429, media_type=JSONAPI, headers={"Retry-After": str(seconds)}
    )


CLOUDFLARE_BLOCK_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head>'
    "<body><h1>a.klaviyo.com</h1><p>Checking if the site connection is secure.</p>"
    "<p>Ray ID: 0000000000000000</p></body></html>"
)
# Edge failures come from Cloudflare, not Klaviyo's API, so their bodies are HTML pages.
_EDGE_STATUSES = frozenset({502, 524})


def render_error(status: int, code: str, detail: str) -> Response:
    """Harness hook for injected faults.

    An injected 403 is the Cloudflare challenge page (HTML, `cf-mitigated: challenge`), because a real
    scope error comes from the app itself as `permission_denied`; an injected 429 is the throttled
    envelope; 502/524 are Cloudflare HTML pages; everything else uses the errors envelope.
    """
    if status == 403:
        return Response(
            CLOUDFLARE_BLOCK_PAGE,
            status_code=403,
            media_type="text/html",
            headers={"cf-mitigated": "challenge"},
        )
    if status == 429:
        return throttled_response(1)
    if status in _EDGE_STATUSES:
        return Response(
            f"<html><body><h1>{status}</h1><p>{detail}</p></body></html>", status, media_type="text/html"
        )
    code = code if status < 500 else "error"
    return KlaviyoError(status, code, detail).response()
