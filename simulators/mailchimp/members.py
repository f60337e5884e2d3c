"""Member routes: list (incremental pulls), read, PATCH/PUT/POST writes, archive, permanent delete and
the batch subscribe endpoint (which exists so a client that wrongly uses it is caught by tests)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from simulators.mailchimp.context import MailchimpState, context, json_body, list_audience
from simulators.mailchimp.errors import ApiError, bad_request, invalid_resource, not_found
from simulators.mailchimp.members_state import LISTED, SORT_KEYS, Audience, Member, subscriber_hash, window
from simulators.mailchimp.merge_fields import apply_values
from simulators.mailchimp.query import (
    PAGING,
    Page,
    bool_param,
    checked_query,
    enum_param,
    in_window,
    optional_time,
    page_of,
    project,
)

STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
PATCH_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending")
LIST_PARAMS = PAGING | {
    "email_type",
    "status",
    "since_timestamp_opt",
    "before_timestamp_opt",
    "since_last_changed",
    "before_last_changed",
    "unique_email_id",
    "vip_only",
    "interest_category_id",
    "interest_ids",
    "interest_match",
    "sort_field",
    "sort_dir",
    "since_last_campaign",
    "unsubscribed_since",
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_BATCH_SUBSCRIBE = 500


def _sorted_candidates(audience: Audience, query: dict[str, str]) -> tuple[list[Member], bool]:
    """Members matching the filters in ascending sort order, and whether the caller wants DESC."""
    bucket = enum_param(query, "status", (*STATUSES, "archived")) or LISTED
    sort_field = enum_param(query, "sort_field", tuple(SORT_KEYS)) or "timestamp_signup"
    descending = enum_param(query, "sort_dir", ("ASC", "DESC")) == "DESC"
    since_changed = optional_time(query, "since_last_changed")
    before_changed = optional_time(query, "before_last_changed")
    since_opt = optional_time(query, "since_timestamp_opt")
    before_opt = optional_time(query, "before_timestamp_opt")
    members, keys = audience.ordered(bucket, sort_field)
    if sort_field == "last_changed":
        members = window(members, keys, since_changed, before_changed)
    elif since_changed or before_changed:
        members = [m for m in members if in_window(m.last_changed, since_changed, before_changed)]
    if since_opt or before_opt:
        members = [m for m in members if in_window(m.timestamp_opt, since_opt, before_opt)]
    if query.get("unique_email_id"):
        members = [m for m in members if m.unique_email_id == query["unique_email_id"]]
    if bool_param(query, "vip_only"):
        members = [m for m in members if m.vip]
    return members, descending


def _cut(members: Sequence[Member], page: Page, descending: bool) -> list[Member]:
    if not descending:
        return list(page.cut(members))
    end = max(len(members) - page.offset, 0)
    return list(reversed(members[max(end - page.count, 0) : end]))


async def list_members(request: Request) -> Response:
    """Built in a worker thread: a 1000-member page is tens of milliseconds of CPU, and building it
    on the event loop kept the simulator from even seeing the other connections' requests, so their
    latency started late (Mailchimp's servers do not make ten connections wait for one another)."""
    ctx = context(request)
    audience = list_audience(request)
    query = checked_query(request, LIST_PARAMS)
    return await asyncio.to_thread(_members_page, ctx, audience, query, page_of(query))


def _members_page(ctx: MailchimpState, audience: Audience, query: dict[str, str], page: Page) -> Response:
    with audience.lock:
        members, descending = _sorted_candidates(audience, query)
        chosen = _cut(members, page, descending)
        if ctx.faults.duplicate_across_pages and page.offset > 0 and chosen:
            previous = _cut(members, Page(1, page.offset - 1), descending)
            chosen = (previous + chosen)[: page.count]
        items = [m.to_json(audience.list_id) for m in chosen]
        total = len(members)
        for member in chosen[: ctx.faults.update_while_paging]:
            audience.touch(member)
    ctx.corrupt_every_nth(items)
    body = {"members": items, "list_id": audience.list_id, "total_items": total, "_links": []}
    return JSONResponse(project(body, query))


def _member(audience: Audience, key: str) -> Member:
    member = audience.resolve(key)
    if member is None:
        raise not_found("The requested resource could not be found.")
    return member


async def get_member(request: Request) -> Response:
    audience = list_audience(request)
    query = checked_query(request, {"fields", "exclude_fields"})
    member = _member(audience, request.path_params["subscriber_hash"])
    return JSONResponse(project(member.to_json(audience.list_id), query))


def _check_status(value: Any, allowed: Sequence[str], name: str = "status") -> str:
    if value not in allowed:
        raise invalid_resource(
            "The resource submitted could not be validated.",
            [{"field": name, "message": f"Status must be one of: {', '.join(allowed)}."}],
        )
    return value


def _check_email(audience: Audience, email: Any) -> str:
    if not isinstance(email, str) or not EMAIL.match(email.strip()):
        raise invalid_resource(
            "Please provide a valid email address.", [{"field": "email_address", "message": ""}]
        )
    if subscriber_hash(email) in audience.forgotten:
        raise ApiError(
            400,
            "Forgotten Email Not Subscribed",
            f"{email.strip()} was permanently deleted and cannot be re-imported. "
            "The contact must re-subscribe to get back on the list.",
        )
    return email.strip()


def _reject_if_injected(request: Request, email: str) -> None:
    rejected = context(request).faults.reject_records
    if email in rejected or email.lower() in rejected or subscriber_hash(email) in rejected:
        raise invalid_resource(
            "The resource submitted could not be validated.",
            [{"field": "email_address", "message": "Injected: this record is rejected."}],
        )


def _skip_validation(request: Request) -> bool:
    return bool(bool_param(dict(request.query_params), "skip_merge_validation"))


def _create(audience: Audience, email: str, status: str, merge_fields: Any, skip: bool) -> Member:
    values = apply_values(audience.merge_fields, {}, merge_fields or {}, skip_required=skip)
    now = audience.now()
    return audience.add_member(
        Member(
            id=subscriber_hash(email),
            email=email,
            status=status,
            merge_fields=values,
            timestamp_signup=now,
            timestamp_opt=now,
            last_changed=now,
            seq=audience.next_seq(),
        )
    )


def _update(audience: Audience, member: Member, body: dict[str, Any], skip: bool, status: str | None) -> None:
    values = member.merge_fields
    if "merge_fields" in body:
        values = apply_values(
            audience.merge_fields, member.merge_fields, body["merge_fields"], skip_required=skip
        )
    member.merge_fields = values
    if "vip" in body:
        member.vip = bool(body["vip"])
    if status is not None:
        member.status = status
    audience.touch(member)


async def patch_member(request: Request) -> Response:
    audience = list_audience(request)
    checked_query(request, {"skip_merge_validation"})
    body = await json_body(request)
    with audience.lock:
        member = _member(audience, request.path_params["subscriber_hash"])
        _reject_if_injected(request, member.email)
        status = _check_status(body["status"], PATCH_STATUSES) if "status" in body else None
        if member.status == "archived" and status is None:
            raise invalid_resource(
                "This contact is archived: only a write that sends a status can restore it."
            )
        if "email_address" in body and subscriber_hash(str(body["email_address"])) != member.id:
            raise bad_request("Changing a member's email address is not supported by this simulator.")
        _update(audience, member, body, _skip_validation(request), status)
        return JSONResponse(member.to_json(audience.list_id))


async def put_member(request: Request) -> Response:
    audience = list_audience(request)
    checked_query(request, {"skip_merge_validation"})
    body = await json_body(request)
    with audience.lock:
        if "status_if_new" not in body:
            raise invalid_resource(
                "The resource submitted could not be validated.",
                [{"field": "status_if_new", "message": "This value should not be blank."}],
            )
        status_if_new = _check_status(body["status_if_new"], STATUSES, "status_if_new")
        status = _check_status(body["status"], STATUSES) if "status" in body else None
        email = _check_email(audience, body.get("email_address"))
        key = request.path_params["subscriber_hash"]
        if key not in (subscriber_hash(email), email.lower()) and audience.resolve(key) is None:
            raise invalid_resource("The subscriber hash does not match the email address.")
        _reject_if_injected(request, email)
        member = audience.resolve(email)
        if member is None:
            member = _create(
                audience, email, status or status_if_new, body.get("merge_fields"), _skip_validation(request)
            )
        else:
            restore = status or (status_if_new if member.status == "archived" else None)
            _update(audience, member, body, _skip_validation(request), restore)
        return JSONResponse(member.to_json(audience.list_id))


async def post_member(request: Request) -> Response:
    audience = list_audience(request)
    checked_query(request, {"skip_merge_validation"})
    body = await json_body(request)
    with audience.lock:
        email = _check_email(audience, body.get("email_address"))
        status = _check_status(body.get("status"), STATUSES)
        _reject_if_injected(request, email)
        member = audience.resolve(email)
        if member is not None and member.status != "archived":
            raise ApiError(
                400,
                "Member Exists",
                f"{email} is already a list member. Use PUT to insert or update list members.",
            )
        if member is not None:
            _update(audience, member, body, _skip_validation(request), status)
        else:
            member = _create(audience, email, status, body.get("merge_fields"), _skip_validation(request))
        return JSONResponse(member.to_json(audience.list_id))


async def archive_member(request: Request) -> Response:
    audience = list_audience(request)
    checked_query(request, ())
    with audience.lock:
        member = _member(audience, request.path_params["subscriber_hash"])
        if member.status == "archived":
            raise not_found("This list member has already been archived.")
        member.status = "archived"
        audience.touch(member)
    return Response(status_code=204)


async def delete_permanent(request: Request) -> Response:
    audience = list_audience(request)
    checked_query(request, ())
    with audience.lock:
        member = audience.members.get(request.path_params["subscriber_hash"])  # md5 only, no email
        if member is None:
            raise not_found()
        audience.forget(member)
    return Response(status_code=204)


def _subscribe_one(
    request: Request, audience: Audience, raw: Any, update_existing: bool
) -> tuple[str, Member]:
    if not isinstance(raw, dict):
        raise invalid_resource("Each member must be an object.")
    email = _check_email(audience, raw.get("email_address"))
    status = _check_status(raw.get("status"), STATUSES)
    _reject_if_injected(request, email)
    member = audience.resolve(email)
    if member is None:
        return "new", _create(audience, email, status, raw.get("merge_fields"), _skip_validation(request))
    if not update_existing:
        raise ApiError(400, "Member Exists", f"{email} is already a list member, do you want to update? ")
    _update(audience, member, raw, _skip_validation(request), status)
    return "updated", member


def _batch_error(raw: Any, error: ApiError) -> dict[str, str]:
    first = error.errors[0] if error.errors else {"field": "", "message": ""}
    return {
        "email_address": str(raw.get("email_address", "")) if isinstance(raw, dict) else "",
        "error": error.detail,
        "error_code": "ERROR_CONTACT_EXISTS" if error.title == "Member Exists" else "ERROR_GENERIC",
        "field": first.get("field", ""),
        "field_message": first.get("message", ""),
    }


async def batch_subscribe(request: Request) -> Response:
    """POST /lists/{id}: HTTP 200 even when members fail; failures are listed in `errors[]`."""
    audience = list_audience(request)
    checked_query(request, {"skip_merge_validation", "skip_duplicate_check"})
    body = await json_body(request)
    members = body.get("members")
    if not isinstance(members, list):
        raise invalid_resource("members must be an array.", [{"field": "members", "message": "Required."}])
    if len(members) > MAX_BATCH_SUBSCRIBE:
        raise invalid_resource(
            f"You can add or update at most {MAX_BATCH_SUBSCRIBE} members per call.",
            [{"field": "members", "message": f"{len(members)} members sent."}],
        )
    result: dict[str, list[Any]] = {"new": [], "updated": [], "errors": []}
    with audience.lock:
        for raw in members:
            try:
                kind, member = _subscribe_one(request, audience, raw, bool(body.get("update_existing")))
                result[kind].append(member.to_json(audience.list_id))
            except ApiError as error:
                result["errors"].append(_batch_error(raw, error))
    return JSONResponse(
        {
            "new_members": result["new"],
            "updated_members": result["updated"],
            "errors": result["errors"],
            "total_created": len(result["new"]),
            "total_updated": len(result["updated"]),
            "error_count": len(result["errors"]),
            "_links": [],
        }
    )
