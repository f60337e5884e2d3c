"""Mailchimp's error body: RFC 7807 problem+json with exactly the members the spec requires.

Every failure of the simulator (our own validation, injected faults, unknown routes) goes through
`problem()`, so a client can never see an error shape the real API would not send.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

ERROR_DOCS = "https://mailchimp.com/developer/marketing/docs/errors/"

TITLES = {
    400: "Bad Request",
    401: "API Key Invalid",
    403: "Forbidden",
    404: "Resource Not Found",
    405: "Method Not Allowed",
    414: "Resource Nesting Too Deep",
    422: "Invalid Method Override",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class ApiError(Exception):
    """Raised anywhere in a handler; rendered by the app's exception handler."""

    status: int
    title: str
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)


def invalid_resource(detail: str, errors: list[dict[str, str]] | None = None) -> ApiError:
    return ApiError(400, "Invalid Resource", detail, errors or [])


def not_found(detail: str = "The requested resource could not be found.") -> ApiError:
    return ApiError(404, "Resource Not Found", detail)


def bad_request(detail: str) -> ApiError:
    return ApiError(400, "Bad Request", detail)


def problem_body(
    status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": ERROR_DOCS,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    if errors:
        body["errors"] = errors
    return body


def problem(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> Response:
    return Response(
        json.dumps(problem_body(status, title, detail, errors)),
        status_code=status,
        media_type="application/problem+json",
    )


def error_response(error: ApiError) -> Response:
    return problem(error.status, error.title, error.detail, error.errors)


def render_error(status: int, code: str, detail: str) -> Response:
    """The harness's renderer for injected faults (bursts, revoked credentials)."""
    return problem(status, TITLES.get(status, "Error"), detail)
