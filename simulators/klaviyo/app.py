"""The Starlette app: routes plus the checks every Klaviyo request goes through, in the real API's order.

1. `Authorization: Klaviyo-API-Key <key>` (401 `not_authenticated` / `authentication_failed`), then the
   operation's scopes (403 `permission_denied`);
2. a well-formed, published `revision` header (400);
3. the operation's burst and steady rate windows (429 `throttled` + `Retry-After`);
4. the media type of a body (415) and its size (413);
5. the query string (400, see `query.py`), then the handler.

Every non-429 answer carries the `RateLimit-*` headers once the request was counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.harness import Faults
from simulators.klaviyo.errors import JSONAPI, KlaviyoError, invalid, throttled_response
from simulators.klaviyo.operations import OPERATIONS, PREDICTIVE_PROFILES, Operation
from simulators.klaviyo.paging import CursorCodec
from simulators.klaviyo.query import Query, parse_query
from simulators.klaviyo.ratelimit import RateLimiter, Throttled
from simulators.klaviyo.resources import EventJsonCache
from simulators.klaviyo.state import KlaviyoState

FIRST_REVISION = date(2022, 10, 17)  # the first GA revision of Klaviyo's current API
_REVISION = re.compile(r"(\d{4})-(\d{2})-(\d{2})(\.pre)?")
_MEDIA_TYPES = ("application/vnd.api+json", "application/json")
_MAX_BODY = {"bulk_import_profiles": 5 * 1024 * 1024}
_DEFAULT_MAX_BODY = 100 * 1024


@dataclass
class KlaviyoApi:
    """Everything a handler needs: the account state, limiter, cursor signer and vendor faults."""

    state: KlaviyoState
    limiter: RateLimiter
    cursors: CursorCodec
    faults: Faults
    event_json: EventJsonCache = field(default_factory=EventJsonCache)


@dataclass
class Call:
    """One authenticated, validated request as a handler sees it."""

    api: KlaviyoApi
    request: Request
    query: Query
    body: Any

    @property
    def base(self) -> str:
        return f"{self.request.url.scheme}://{self.request.url.netloc}"


Handler = Callable[[Call], Response]


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), status_code=status, media_type=JSONAPI)


def json_text_response(data: list[str], rest: dict[str, Any]) -> Response:
    """`{"data": [...], **rest}` from already serialized resources (see `EventJsonCache`)."""
    tail = json.dumps(rest, separators=(",", ":"))[1:]
    text = '{"data":[' + ",".join(data) + "]" + ("," + tail if rest else "}")
    return Response(text, status_code=200, media_type=JSONAPI)


def _authorize(state: KlaviyoState, request: Request, operation: Operation) -> None:
    header = request.headers.get("authorization")
    if header is None:
        raise KlaviyoError(401, "not_authenticated", "Authentication credentials were not provided.")
    scheme, _, key = header.partition(" ")
    if scheme != "Klaviyo-API-Key" or not key or key != key.strip():
        raise KlaviyoError(
            401, "not_authenticated", "Missing or invalid authorization scheme. Please use Klaviyo-API-Key."
        )
    scopes = state.api_keys.get(key)
    if scopes is None:
        raise KlaviyoError(
            401,
            "authentication_failed",
            "Incorrect authentication credentials.",
            title="Incorrect authentication credentials.",
        )
    missing = [scope for scope in operation.scopes if scope not in scopes]
    if missing:
        raise KlaviyoError(
            403, "permission_denied", f"This API key is missing the required scopes: {', '.join(missing)}."
        )


def _check_revision(request: Request) -> None:
    value = request.headers.get("revision")
    if value is None:
        raise invalid("The 'revision' header is required (format YYYY-MM-DD[.suffix]).", parameter="revision")
    found = _REVISION.fullmatch(value)
    try:
        day = date(int(found[1]), int(found[2]), int(found[3])) if found else None
    except ValueError:
        day = None
    if day is None or not FIRST_REVISION <= day <= datetime.now(UTC).date():
        raise invalid(f"'{value}' is not a valid revision.", parameter="revision")


def _rate_buckets(operation: Operation, request: Request) -> list[Operation]:
    additional = request.query_params.get("additional-fields[profile]", "")
    if operation.operation_id == "get_profiles" and "predictive_analytics" in additional.split(","):
        return [PREDICTIVE_PROFILES, operation]
    return [operation]


async def _read_body(request: Request, operation: Operation) -> Any:
    if request.method not in ("POST", "PATCH"):
        return None
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _MEDIA_TYPES:
        raise KlaviyoError(415, "unsupported_media_type", f"Unsupported media type '{media or 'none'}'.")
    raw = await request.body()
    limit = _MAX_BODY.get(operation.operation_id, _DEFAULT_MAX_BODY)
    if len(raw) > limit:
        raise KlaviyoError(413, "payload_too_large", f"The request body may not exceed {limit} bytes.")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("The request body is not valid JSON.", pointer="/") from exc


def guarded(api: KlaviyoApi, operation_id: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    operation = OPERATIONS[operation_id]

    async def endpoint(request: Request) -> Response:
        headers: dict[str, str] = {}
        try:
            _authorize(api.state, request, operation)
            _check_revision(request)
            headers = api.limiter.check(_rate_buckets(operation, request))
            body = await _read_body(request, operation)
            query = parse_query(operation, request.query_params)
            api.state.advance()
            response = handler(Call(api, request, query, body))
        except Throttled as throttled:
            return throttled_response(throttled.retry_after)
        except KlaviyoError as error:
            response = error.response()
        response.headers.update(headers)
        return response

    return endpoint


async def _not_found(request: Request, exc: Exception) -> Response:
    return KlaviyoError(404, "not_found", f"No endpoint at {request.url.path}.").response()


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return KlaviyoError(405, "method_not_allowed", f"Method '{request.method}' not allowed.").response()


def create_app(api: KlaviyoApi) -> Starlette:
    from simulators.klaviyo import read_routes, write_routes  # the route modules import this one

    def route(path: str, operation_id: str, handler: Handler, method: str) -> Route:
        return Route(path, guarded(api, operation_id, handler), methods=[method])

    routes = [
        route("/api/profiles", "get_profiles", read_routes.get_profiles, "GET"),
        route("/api/profiles/{id}", "update_profile", write_routes.update_profile, "PATCH"),
        route("/api/metrics", "get_metrics", read_routes.get_metrics, "GET"),
        route("/api/events", "get_events", read_routes.get_events, "GET"),
        route(
            "/api/profile-import", "create_or_update_profile", write_routes.create_or_update_profile, "POST"
        ),
        route(
            "/api/profile-bulk-import-jobs", "bulk_import_profiles", write_routes.bulk_import_profiles, "POST"
        ),
        route("/api/profile-bulk-import-jobs", "get_bulk_import_profiles_jobs", read_routes.get_jobs, "GET"),
        route(
            "/api/profile-bulk-import-jobs/{job_id}",
            "get_bulk_import_profiles_job",
            read_routes.get_job,
            "GET",
        ),
        route(
            "/api/profile-bulk-import-jobs/{id}/import-errors",
            "get_errors_for_bulk_import_profiles_job",
            read_routes.get_import_errors,
            "GET",
        ),
        route(
            "/api/data-privacy-deletion-jobs",
            "request_profile_deletion",
            write_routes.request_deletion,
            "POST",
        ),
    ]
    # Klaviyo accepts a trailing slash on every path (its own `links` use one).
    routes += [Route(r.path + "/", r.endpoint, methods=list(r.methods or ())) for r in list(routes)]
    return Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_allowed})
