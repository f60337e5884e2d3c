"""Routes outside the contacts family: email campaigns, orders, custom events.

They all spend the "all other endpoints" budget (100 requests/hour) except `POST /events`, which
has its own. `/events` is write-only: Brevo offers no way to read custom events back.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from simulators.brevo.context import Context
from simulators.brevo.engagement import CampaignRecord
from simulators.brevo.errors import BrevoError, invalid, not_found
from simulators.brevo.params import bool_param, json_object, page_params, since_param, window_param
from simulators.brevo.state import OrderRecord
from simulators.brevo.times import parse_datetime_param

_STATISTICS = ("globalStats", "linksStats", "statsByDomain", "statsByDevice", "statsByBrowser")
_EVENT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_IDENTIFIERS = ("email_id", "phone_id", "whatsapp_id", "landline_number_id", "ext_id")
MAX_EVENT_PROPERTIES_BYTES = 50 * 1024


def _campaign_json(
    ctx: Context, campaign: CampaignRecord, statistics: str | None, html: bool
) -> dict[str, Any]:
    """A `getEmailCampaign` body; only the requested statistics are filled (all when none named)."""
    sent = ctx.state.time_text(campaign.sent_at)
    wanted = (statistics,) if statistics else _STATISTICS
    global_stats = campaign.global_stats()
    return {
        "id": campaign.id,
        "name": campaign.name,
        "subject": campaign.name,
        "type": "classic",
        "status": "sent",
        "scheduledAt": sent,
        "sentDate": sent,
        "testSent": False,
        "header": "[DEFAULT_HEADER]",
        "footer": "[DEFAULT_FOOTER]",
        "sender": {"name": "Shop", "email": "news@espd-shop.example", "id": 1},
        "replyTo": "news@espd-shop.example",
        "htmlContent": "" if not html else f"<html><body>{campaign.name}</body></html>",
        "tag": "discount" if campaign.discount_offer else "newsletter",
        "createdAt": sent,
        "modifiedAt": sent,
        "recipients": {"lists": [2], "exclusionLists": []},
        "statistics": {
            "globalStats": global_stats if "globalStats" in wanted else _zero_stats(),
            "campaignStats": [{"listId": 2, **global_stats}] if "globalStats" in wanted else [],
            "mirrorClick": 0,
            "remaining": 0,
            "linksStats": dict(campaign.links) if "linksStats" in wanted else {},
            "statsByDomain": {},
            "statsByDevice": {},
            "statsByBrowser": {},
        },
    }


def _zero_stats() -> dict[str, int]:
    return {key: 0 for key in CampaignRecord(0, "", datetime.min, False).global_stats()}


async def list_campaigns(ctx: Context, request: Request) -> JSONResponse:
    """`getEmailCampaigns`: limit <= 100, creation order (default desc), sent-date window."""
    page = page_params(request, cap=100, default=50)
    campaign_type = request.query_params.get("type")
    if campaign_type not in (None, "classic", "trigger"):
        raise invalid("type must be classic or trigger")
    status = request.query_params.get("status")
    if status not in (None, "suspended", "archive", "sent", "queued", "draft", "inProcess"):
        raise invalid("status is not a valid campaign status")
    statistics = _statistics_param(request, _STATISTICS[:3])
    window = _sent_window(request, status)
    html = not bool_param(request, "excludeHtmlContent")
    with ctx.state.lock:
        chosen = [
            c
            for c in ctx.state.campaigns
            if campaign_type != "trigger"
            and status in (None, "sent")
            and (window is None or window[0] <= c.sent_at <= window[1])
        ]
        rows = [_campaign_json(ctx, c, statistics, html) for c in page.cut(chosen)]
    return JSONResponse({"campaigns": rows, "count": len(chosen)})


def _statistics_param(request: Request, allowed: tuple[str, ...]) -> str | None:
    statistics = request.query_params.get("statistics")
    if statistics is not None and statistics not in allowed:
        raise invalid(f"statistics must be one of {', '.join(allowed)}")
    return statistics


def _sent_window(request: Request, status: str | None) -> tuple[datetime, datetime] | None:
    window = window_param(request, parse_datetime_param)
    if window is not None and status not in (None, "sent"):
        raise invalid("startDate and endDate are only available for sent campaigns")
    return window


async def get_campaign(ctx: Context, request: Request) -> JSONResponse:
    statistics = _statistics_param(request, _STATISTICS)
    with ctx.state.lock:
        campaign = ctx.state.campaign_by_id.get(request.path_params["campaignId"])
        if campaign is None:
            raise not_found("Campaign ID does not exist")
        return JSONResponse(_campaign_json(ctx, campaign, statistics, html=True))


def _order_json(ctx: Context, record: OrderRecord) -> dict[str, Any]:
    order = record.order
    body: dict[str, Any] = {
        "id": order.order_id,
        "createdAt": ctx.state.time_text(order.ordered_at),
        "updatedAt": ctx.state.time_text(order.updated_at),
        "contact_id": record.contact_id,
        "email": record.email,
        "status": "cancelled" if order.cancelled_at else "complete",
        "amount": order.total,
        "identifiers": {"email_id": record.email},
        "products": [
            {"productId": line.product_id, "quantity": line.quantity, "price": line.unit_price}
            for line in order.lines
        ],
    }
    if order.discount_code:
        body["coupons"] = [order.discount_code]
    return body


async def list_orders(ctx: Context, request: Request) -> JSONResponse:
    """`getOrders`: limit <= 100, creation order (default desc), `modifiedSince`/`createdSince`."""
    page = page_params(request, cap=100, default=50)
    modified = since_param(request, "modifiedSince")
    created = since_param(request, "createdSince")
    with ctx.state.lock:
        chosen = [
            r
            for r in ctx.state.orders
            if (modified is None or r.order.updated_at > modified)
            and (created is None or r.order.ordered_at > created)
        ]
        rows = [_order_json(ctx, r) for r in page.cut(chosen)]
    return JSONResponse({"orders": rows, "count": len(chosen)})


async def create_event(ctx: Context, request: Request) -> Response:
    """`createEvent`: validated and recorded, 204. There is no GET."""
    body = await json_object(request)
    name = body.get("event_name")
    if not isinstance(name, str) or not _EVENT_NAME.match(name):
        raise invalid("event_name is required: at most 255 characters, alphanumerical, - and _ only")
    identifiers = body.get("identifiers")
    if not isinstance(identifiers, dict) or not identifiers:
        raise BrevoError(400, "missing_parameter", "identifiers is required with at least one identifier")
    unknown = sorted(set(identifiers) - set(_IDENTIFIERS))
    if unknown:
        raise invalid(f"identifiers has unknown keys: {', '.join(unknown)}")
    if "event_date" in body:
        parse_datetime_param("event_date", str(body["event_date"]))
    _check_event_properties(body.get("event_properties"))
    with ctx.state.lock:
        ctx.state.custom_events.append(body)
    return Response(status_code=204)


def _check_event_properties(properties: Any) -> None:
    if properties is None:
        return
    if not isinstance(properties, dict):
        raise invalid("event_properties must be an object")
    if len(json.dumps(properties).encode()) > MAX_EVENT_PROPERTIES_BYTES:
        raise invalid("event_properties exceeds 50KB")
    bad = [key for key in properties if not _EVENT_NAME.match(key)]
    if bad:
        raise invalid("event_properties keys must be at most 255 characters, alphanumerical, - and _ only")
