"""The Brevo v3 Starlette app: routes under `/v3`, `api-key` auth, per-family rate limits, and one
place that turns `BrevoError`s into `errorModel` bodies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from simulators.brevo import jobs, pull, reports, writes
from simulators.brevo.context import Context
from simulators.brevo.errors import BrevoError, error_response
from simulators.brevo.ratelimits import RateLimiter, family_of

BASE_PATH = "/v3"
Handler = Callable[[Context, Request], Awaitable[Response]]


def _endpoint(
    ctx: Context, limiter: RateLimiter, api_key: str, handler: Handler
) -> Callable[..., Awaitable[Response]]:
    """Wrap a handler with what every Brevo call goes through, in Brevo's order: the key, then
    the family's budget (a 429 carries the rate headers but no Retry-After), then the handler."""

    async def endpoint(request: Request) -> Response:
        if request.headers.get("api-key") != api_key:
            return error_response(401, "unauthorized", "Key not found")
        path = request.url.path.removeprefix(BASE_PATH)
        verdict = limiter.check(family_of(request.method, path))
        headers = verdict.headers if verdict else {}
        if verdict is not None and not verdict.allowed:
            response = error_response(429, "not_acceptable", "Too Many Requests")
        else:
            jobs.advance(ctx)
            try:
                response = await handler(ctx, request)
            except BrevoError as error:
                response = error_response(error.status, error.code, error.message, error.metadata)
        response.headers.update(headers)
        return response

    return endpoint


_ROUTES: list[tuple[str, str, Handler]] = [
    ("/contacts", "GET", pull.list_contacts),
    ("/contacts/attributes", "GET", writes.list_attributes),
    ("/contacts/attributes/{attributeCategory}/{attributeName}", "POST", writes.create_attribute),
    ("/contacts/attributes/{attributeCategory}/{attributeName}", "PUT", writes.change_attribute),
    ("/contacts/attributes/{attributeCategory}/{attributeName}", "DELETE", writes.delete_attribute),
    ("/contacts/lists/{listId:int}/contacts", "GET", pull.list_contacts_of_list),
    ("/contacts/batch", "POST", writes.update_batch),
    ("/contacts/import", "POST", jobs.import_contacts),
    ("/contacts/{identifier}", "GET", pull.get_contact),
    ("/contacts/{identifier}", "PUT", writes.update_contact),
    ("/contacts/{identifier}", "DELETE", writes.delete_contact),
    ("/contacts/{identifier}/campaignStats", "GET", pull.get_contact_stats),
    ("/emailCampaigns", "GET", reports.list_campaigns),
    ("/emailCampaigns/{campaignId:int}", "GET", reports.get_campaign),
    ("/orders", "GET", reports.list_orders),
    ("/processes", "GET", jobs.list_processes),
    ("/processes/{processId}", "GET", jobs.get_process),
    ("/events", "POST", reports.create_event),
]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in Brevo's error shape too."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = "Not found" if status == 404 else "Method not allowed" if status == 405 else "Internal error"
    return error_response(status, "", message)


def build_app(ctx: Context, limiter: RateLimiter, api_key: str) -> Starlette:
    routes = [
        Route(path, _endpoint(ctx, limiter, api_key, handler), methods=[method])
        for path, method, handler in _ROUTES
    ]
    return Starlette(
        routes=[Mount(BASE_PATH, routes=routes)],
        exception_handlers={404: _http_error, 405: _http_error},
    )
