"""Write routes of the contacts family: `updateContact`, `deleteContact`, `updateBatchContacts`
and the attribute definitions. Every success is 204 (201 for a create) with an empty body."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from simulators.brevo.attributes import build_attribute, update_attribute
from simulators.brevo.contacts import Contact, ContactChange, validate_change
from simulators.brevo.context import BATCH_RETIREMENT_DATE, Context
from simulators.brevo.errors import BrevoError, invalid, not_found
from simulators.brevo.params import json_object


def _check_lists(ctx: Context, change: ContactChange, where: str = "") -> None:
    unknown = sorted(set(change.list_ids + change.unlink_list_ids) - set(ctx.state.lists))
    if unknown:
        raise invalid(f"{where}list ids {unknown} do not exist")


def _rejected(ctx: Context, contact: Contact) -> bool:
    """Fault: `Faults.reject_records` names contacts (id or email) whose writes fail."""
    names = ctx.faults.reject_records
    return bool(names) and (str(contact.id) in names or (contact.email or "") in names)


async def update_contact(ctx: Context, request: Request) -> Response:
    """`updateContact`: never creates; wrongly typed values are dropped silently (still 204)."""
    body = await json_object(request)
    state = ctx.state
    with state.lock:
        contact = state.contacts.find(
            request.path_params["identifier"], request.query_params.get("identifierType")
        )
        if state.monotonic() - contact.created_monotonic < ctx.options.too_early_seconds:
            raise BrevoError(
                425, "account_in_process", "Contact is still being processed, retry in a few seconds"
            )
        if _rejected(ctx, contact):
            raise invalid("Injected: the contact rejected this update")
        change, _dropped = validate_change(body, state.attributes)
        _check_lists(ctx, change)
        state.contacts.apply(contact, change)
    return Response(status_code=204)


async def delete_contact(ctx: Context, request: Request) -> Response:
    """`deleteContact`: 204, then 404; the account owner's own address is a 405."""
    state = ctx.state
    identifier = request.path_params["identifier"]
    with state.lock:
        if identifier.lower() == state.account_email.lower():
            raise BrevoError(
                405, "method_not_allowed", "You're not allowed to delete registered email contact with Brevo"
            )
        contact = state.contacts.find(identifier, request.query_params.get("identifierType"))
        if (contact.email or "").lower() == state.account_email.lower():
            raise BrevoError(
                405, "method_not_allowed", "You're not allowed to delete registered email contact with Brevo"
            )
        state.contacts.delete(contact)
    return Response(status_code=204)


async def update_batch(ctx: Context, request: Request) -> Response:
    """`updateBatchContacts`: all or nothing; unknown contacts -> 404 listing their indexes."""
    if ctx.options.batch_retired:
        raise not_found(f"This endpoint was retired on {BATCH_RETIREMENT_DATE}; use /v3/contacts/import")
    body = await json_object(request)
    items = body.get("contacts")
    if not isinstance(items, list) or not items:
        raise BrevoError(400, "missing_parameter", "contacts must be a non-empty array")
    state = ctx.state
    with state.lock:
        planned = [_plan_item(ctx, index, item) for index, item in enumerate(items)]
        missing = [str(index) for index, (contact, _) in enumerate(planned) if contact is None]
        if missing:
            raise not_found(f"No contact found for indexes {','.join(missing)}")
        rejected = [str(i) for i, (contact, _) in enumerate(planned) if contact and _rejected(ctx, contact)]
        if rejected:
            raise invalid(f"Injected: contacts rejected at indexes {','.join(rejected)}")
        for contact, change in planned:
            assert contact is not None
            state.contacts.apply(contact, change)
    return Response(status_code=204)


def _plan_item(ctx: Context, index: int, item: Any) -> tuple[Contact | None, ContactChange]:
    where = f"contacts[{index}]."
    if not isinstance(item, dict):
        raise invalid(f"contacts[{index}] must be an object")
    given = [key for key in ("email", "id", "sms") if key in item]
    if len(given) != 1:
        raise invalid(f"contacts[{index}] must have exactly one of email, id or sms")
    change, _dropped = validate_change(item, ctx.state.attributes, where)
    _check_lists(ctx, change, where)
    key = given[0]
    kind = {"email": "email_id", "id": "contact_id", "sms": "phone_id"}[key]
    try:
        return ctx.state.contacts.find(str(item[key]), kind), change
    except BrevoError as error:
        if error.status == 404:
            return None, change
        raise BrevoError(400, error.code, f"{where}{key}: {error.message}") from None


async def list_attributes(ctx: Context, request: Request) -> JSONResponse:
    with ctx.state.lock:
        return JSONResponse({"attributes": [a.as_json() for a in ctx.state.attributes.values()]})


async def create_attribute(ctx: Context, request: Request) -> Response:
    """`createAttribute`: 201 with an empty body; the name is stored upper case."""
    body = await json_object(request)
    category = request.path_params["attributeCategory"]
    attribute = build_attribute(category, request.path_params["attributeName"], body)
    with ctx.state.lock:
        if attribute.name in ctx.state.attributes:
            raise BrevoError(400, "duplicate_parameter", f"Attribute {attribute.name} already exists")
        ctx.state.attributes[attribute.name] = attribute
    return Response(status_code=201)


async def change_attribute(ctx: Context, request: Request) -> Response:
    body = await json_object(request)
    with ctx.state.lock:
        attribute = _attribute(ctx, request)
        update_attribute(attribute, body)
    return Response(status_code=204)


async def delete_attribute(ctx: Context, request: Request) -> Response:
    """Removes the definition and every stored value of it (Brevo's documented effect)."""
    with ctx.state.lock:
        attribute = _attribute(ctx, request)
        del ctx.state.attributes[attribute.name]
        for contact in ctx.state.contacts.by_id.values():
            contact.attributes.pop(attribute.name, None)
        ctx.state.contacts.version += 1
    return Response(status_code=204)


def _attribute(ctx: Context, request: Request) -> Any:
    name = request.path_params["attributeName"].upper()
    attribute = ctx.state.attributes.get(name)
    if attribute is None or attribute.category != request.path_params["attributeCategory"]:
        raise not_found(f"Attribute {name} not found in category {request.path_params['attributeCategory']}")
    return attribute
