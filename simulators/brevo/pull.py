"""Read routes of the contacts family: list contacts (all or one list), one contact, campaignStats,
and the paging faults (malformed records, duplicates across pages, updates while paging)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from simulators.brevo.contacts import Contact
from simulators.brevo.context import Context
from simulators.brevo.engagement import contact_campaign_stats
from simulators.brevo.errors import invalid, not_found
from simulators.brevo.params import Page, int_list_param, page_params, since_param, window_param
from simulators.brevo.times import parse_date_param

MAX_STATS_DAYS = 90
_FILTER = re.compile(r'^equals\(([A-Za-z0-9_]+),\s*(?:"([^"]*)"|(true|false|-?\d+(?:\.\d+)?))\)$')


def contact_json(ctx: Context, contact: Contact) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": contact.id,
        "emailBlacklisted": contact.email_blacklisted,
        "smsBlacklisted": contact.sms_blacklisted,
        "createdAt": ctx.state.time_text(contact.created_at),
        "modifiedAt": ctx.state.time_text(contact.modified_at),
        "listIds": list(contact.list_ids),
        "attributes": dict(contact.attributes),
    }
    if contact.email:
        body["email"] = contact.email
    return body


async def list_contacts(ctx: Context, request: Request) -> JSONResponse:
    """`getContacts`: offset pages over the live store, by creation, newest first unless asc."""
    page = page_params(request, cap=1000, default=50)
    list_ids = int_list_param(request, "listIds")
    segment = request.query_params.get("segmentId")
    if list_ids is not None and segment is not None:
        raise invalid("Either listIds or segmentId can be passed, not both")
    if segment is not None:
        raise invalid(f"segmentId {segment} does not exist")
    return _page_of_contacts(ctx, request, page, list_ids, with_created=True)


async def list_contacts_of_list(ctx: Context, request: Request) -> JSONResponse:
    """`getContactsFromList`: same shape, `limit` capped at 500."""
    list_id = request.path_params["listId"]
    page = page_params(request, cap=500, default=50)
    with ctx.state.lock:
        if list_id not in ctx.state.lists:
            raise not_found("List ID does not exist")
    return _page_of_contacts(ctx, request, page, [list_id], with_created=False)


def _page_of_contacts(
    ctx: Context, request: Request, page: Page, list_ids: list[int] | None, *, with_created: bool
) -> JSONResponse:
    modified = since_param(request, "modifiedSince")
    created = since_param(request, "createdSince") if with_created else None
    attribute_filter = _attribute_filter(request.query_params.get("filter"))
    key = (modified, created, tuple(list_ids or ()), request.query_params.get("filter"))
    keep = _predicate(modified, created, list_ids, attribute_filter)
    state = ctx.state
    with state.lock:
        ids = state.contacts.select(key, keep)
        chosen = page.cut(ids)
        if ctx.faults.duplicate_across_pages and page.offset > 0:
            chosen = Page(1, page.offset - 1, page.descending).cut(ids) + chosen
        rows = [contact_json(ctx, state.contacts.by_id[cid]) for cid in chosen]
        total = len(ids)
        _touch_while_paging(ctx)
    _malform(ctx, rows)
    return JSONResponse({"contacts": rows, "count": total})


def _predicate(
    modified: datetime | None,
    created: datetime | None,
    list_ids: list[int] | None,
    attribute_filter: tuple[str, Any] | None,
) -> Callable[[Contact], bool] | None:
    """One test per contact for the given filters ("since" is strictly after), or None for all."""
    if modified is None and created is None and list_ids is None and attribute_filter is None:
        return None
    wanted = set(list_ids or ())

    def keep(contact: Contact) -> bool:
        if modified is not None and not contact.modified_at > modified:
            return False
        if created is not None and not contact.created_at > created:
            return False
        if list_ids is not None and not wanted.intersection(contact.list_ids):
            return False
        if attribute_filter is not None:
            name, value = attribute_filter
            return contact.attributes.get(name) == value or (name == "EMAIL" and contact.email == value)
        return True

    return keep


def _attribute_filter(raw: str | None) -> tuple[str, Any] | None:
    """`filter=equals(ATTR,"value")`, the only operator Brevo supports."""
    if raw is None:
        return None
    match = _FILTER.match(raw)
    if match is None:
        raise invalid('filter must look like equals(ATTRIBUTE,"value"); equals is the only operator')
    name, text, literal = match.groups()
    if text is not None:
        return name, text
    if literal in ("true", "false"):
        return name, literal == "true"
    return name, float(literal) if "." in literal else int(literal)


def _touch_while_paging(ctx: Context) -> None:
    """Fault: bump `modifiedAt` of N random contacts after each page (caller holds the lock)."""
    store = ctx.state.contacts
    for _ in range(min(ctx.faults.update_while_paging, len(store.order))):
        store.touch(store.by_id[ctx.rng.choice(store.order)])


def _malform(ctx: Context, rows: list[dict[str, Any]]) -> None:
    """Fault: every Nth record of a page loses its id and gets an unparseable `modifiedAt`."""
    every = ctx.faults.malformed_every
    if not every:
        return
    for index in range(every - 1, len(rows), every):
        rows[index]["id"] = None
        rows[index]["modifiedAt"] = "not-a-date"


async def get_contact(ctx: Context, request: Request) -> JSONResponse:
    """`getContactInfo`: the contact plus its campaign statistics."""
    window = _stats_window(request, limit_days=None)
    with ctx.state.lock:
        contact = _find(ctx, request)
        body = contact_json(ctx, contact)
        body["statistics"] = _stats(ctx, contact, window)
    return JSONResponse(body)


async def get_contact_stats(ctx: Context, request: Request) -> JSONResponse:
    """`getContactStats`: both dates or none, at most 90 days apart."""
    window = _stats_window(request, limit_days=MAX_STATS_DAYS)
    with ctx.state.lock:
        contact = _find(ctx, request)
        return JSONResponse(_stats(ctx, contact, window))


def _find(ctx: Context, request: Request) -> Contact:
    return ctx.state.contacts.find(
        request.path_params["identifier"], request.query_params.get("identifierType")
    )


def _stats(ctx: Context, contact: Contact, window: Any) -> dict[str, Any]:
    events = ctx.state.events_by_contact.get(contact.id, [])
    return contact_campaign_stats(contact.id, events, ctx.state.time_text, window)


def _stats_window(request: Request, limit_days: int | None) -> tuple[date, date] | None:
    window = window_param(request, parse_date_param)
    if window is not None and limit_days is not None and (window[1] - window[0]).days > limit_days:
        raise invalid(
            f"Maximum difference between startDate and endDate should not be greater than {limit_days} days"
        )
    return window
