"""Brevo's error bodies: `errorModel` `{"code", "message"}` and, for contact writes,
`contactErrorModel` (the same plus optional `metadata`).

Every error the simulator sends goes through `error_response`, so the shape is the same whether the
vendor code, the auth check, the rate limiter or an injected fault produced it.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

# The `code` enum of `errorModel` plus `account_in_process` from `contactErrorModel`.
ERROR_CODES = frozenset(
    {
        "invalid_parameter",
        "missing_parameter",
        "out_of_range",
        "campaign_processing",
        "campaign_sent",
        "document_not_found",
        "not_enough_credits",
        "permission_denied",
        "duplicate_parameter",
        "duplicate_request",
        "method_not_allowed",
        "unauthorized",
        "account_under_validation",
        "not_acceptable",
        "bad_request",
        "unprocessable_entity",
        "account_in_process",
    }
)

# What an error of a given status is called when the caller (the harness) names no Brevo code.
# The spec has no code for 429 or 5xx; the simulator answers with the nearest enum value so the body
# still validates against `errorModel`.
_DEFAULT_CODE = {
    400: "bad_request",
    401: "unauthorized",
    402: "not_enough_credits",
    403: "permission_denied",
    404: "document_not_found",
    405: "method_not_allowed",
    409: "duplicate_request",
    422: "unprocessable_entity",
    425: "account_in_process",
    429: "not_acceptable",
}


class BrevoError(Exception):
    """Raised by route code; rendered as an `errorModel` body by the app's exception handler."""

    def __init__(self, status: int, code: str, message: str, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.metadata = metadata


def error_response(status: int, code: str, message: str, metadata: dict[str, Any] | None = None) -> Response:
    """The vendor's error shape; an unknown `code` (e.g. from the harness) becomes the status default."""
    if code not in ERROR_CODES:
        code = _DEFAULT_CODE.get(status, "bad_request")
    body: dict[str, Any] = {"code": code, "message": message}
    if metadata:
        body["metadata"] = metadata
    return JSONResponse(body, status_code=status)


def invalid(message: str) -> BrevoError:
    return BrevoError(400, "invalid_parameter", message)


def not_found(message: str) -> BrevoError:
    return BrevoError(404, "document_not_found", message)
