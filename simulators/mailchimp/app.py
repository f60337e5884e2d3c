"""Routes of the simulated Marketing API v3 and the app around them."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from simulators.mailchimp import batches, ecommerce, members, merge_routes, reports
from simulators.mailchimp.context import MailchimpState, context
from simulators.mailchimp.errors import TITLES, ApiError, error_response, problem
from simulators.mailchimp.query import checked_query, iso, project

API_PREFIX = "/3.0"
MEMBER = "/lists/{list_id}/members/{subscriber_hash}"


async def ping(request: Request) -> Response:
    checked_query(request, ("fields", "exclude_fields"))
    return JSONResponse({"health_status": "Everything's Chimpy!"})


def _list_json(state: MailchimpState) -> dict[str, Any]:
    audience = state.audience
    listed = [m for m in audience.members.values() if m.status == "subscribed"]
    return {
        "id": audience.list_id,
        "web_id": 100001,
        "name": audience.name,
        "date_created": iso(audience.created),
        "double_optin": False,
        "marketing_permissions": False,
        "email_type_option": False,
        "visibility": "prv",
        "stats": {
            "member_count": len(listed),
            "unsubscribe_count": sum(1 for m in audience.members.values() if m.status == "unsubscribed"),
            "cleaned_count": sum(1 for m in audience.members.values() if m.status == "cleaned"),
            "campaign_count": len(state.reports.campaigns),
            "merge_field_count": len(audience.merge_fields),
        },
        "_links": [],
    }


async def get_lists(request: Request) -> Response:
    query = checked_query(
        request,
        (
            *("fields", "exclude_fields", "count", "offset", "before_date_created", "since_date_created"),
            *("before_campaign_last_sent", "since_campaign_last_sent", "email", "sort_field", "sort_dir"),
            *("has_ecommerce_store", "include_total_contacts"),
        ),
    )
    lists = [_list_json(context(request))]
    body = {
        "lists": lists,
        "total_items": len(lists),
        "constraints": {"may_create": False, "max_instances": 1, "current_total_instances": 1},
        "_links": [],
    }
    return JSONResponse(project(body, query))


async def get_list(request: Request) -> Response:
    query = checked_query(request, ("fields", "exclude_fields", "include_total_contacts"))
    state = context(request)
    if request.path_params["list_id"] != state.audience.list_id:
        raise ApiError(404, "Resource Not Found", "The requested resource could not be found.")
    return JSONResponse(project(_list_json(state), query))


ROUTES = [
    Route("/ping", ping),
    Route("/lists", get_lists),
    Route("/lists/{list_id}", get_list),
    Route("/lists/{list_id}", members.batch_subscribe, methods=["POST"]),
    Route("/lists/{list_id}/members", members.list_members),
    Route("/lists/{list_id}/members", members.post_member, methods=["POST"]),
    Route(MEMBER, members.get_member),
    Route(MEMBER, members.patch_member, methods=["PATCH"]),
    Route(MEMBER, members.put_member, methods=["PUT"]),
    Route(MEMBER, members.archive_member, methods=["DELETE"]),
    Route(MEMBER + "/actions/delete-permanent", members.delete_permanent, methods=["POST"]),
    Route(MEMBER + "/activity-feed", reports.activity_feed),
    Route("/lists/{list_id}/merge-fields", merge_routes.list_fields),
    Route("/lists/{list_id}/merge-fields", merge_routes.create_field, methods=["POST"]),
    Route("/lists/{list_id}/merge-fields/{merge_id}", merge_routes.get_field),
    Route("/lists/{list_id}/merge-fields/{merge_id}", merge_routes.update_field, methods=["PATCH"]),
    Route("/lists/{list_id}/merge-fields/{merge_id}", merge_routes.delete_field, methods=["DELETE"]),
    Route("/campaigns", reports.list_campaigns),
    Route("/reports/{campaign_id}/email-activity", reports.email_activity),
    Route("/ecommerce/stores", ecommerce.list_stores),
    Route("/ecommerce/stores/{store_id}/customers", ecommerce.list_customers),
    Route("/ecommerce/stores/{store_id}/orders", ecommerce.list_store_orders),
    Route("/ecommerce/orders", ecommerce.list_all_orders),
    Route("/batches", batches.list_batches),
    Route("/batches", batches.post_batch, methods=["POST"]),
    Route("/batches/{batch_id}", batches.get_batch),
    Route("/batches/{batch_id}", batches.delete_batch, methods=["DELETE"]),
]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = "The requested resource could not be found." if exc.status_code == 404 else str(exc.detail)
    return problem(exc.status_code, TITLES.get(exc.status_code, "Error"), detail)


async def _crash(request: Request, exc: Exception) -> Response:
    return problem(500, "Internal Server Error", "An unexpected internal error occurred.")


def _handlers() -> dict[Any, Any]:
    return {ApiError: _api_error, HTTPException: _http_error, Exception: _crash}


def build_api(state: MailchimpState) -> Starlette:
    """The versioned API (paths without `/3.0`): mounted by the server and called by batches."""
    api = Starlette(routes=ROUTES, exception_handlers=_handlers())
    api.state.mailchimp = state
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api, raise_app_exceptions=False), base_url="http://batch.internal"
    )

    async def execute(method: str, path: str, params: dict[str, Any], body: str | None) -> tuple[int, str]:
        response = await client.request(
            method,
            path,
            params={k: str(v) for k, v in params.items()},
            content=body.encode() if body is not None else None,
            headers={"content-type": "application/json"},
        )
        return response.status_code, response.text

    state.batches.executor = execute
    return api


def build_app(state: MailchimpState) -> Starlette:
    app = Starlette(
        routes=[
            Mount(API_PREFIX, app=build_api(state)),
            Route("/batch-results/{batch_id}.tar.gz", batches.batch_results),
        ],
        exception_handlers=_handlers(),
    )
    app.state.mailchimp = state
    return app
