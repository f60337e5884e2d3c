"""`/lists/{id}/merge-fields`: list (count defaults to 10, a classic bug), create (answers 200, not
201), read, update (type is immutable, name required) and delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from simulators.mailchimp.context import json_body, list_audience
from simulators.mailchimp.errors import invalid_resource, not_found
from simulators.mailchimp.members_state import Audience
from simulators.mailchimp.merge_fields import MAX_MERGE_FIELDS, MergeField, validate_definition
from simulators.mailchimp.query import PAGING, bool_param, checked_query, page_of, project


def _check_tag_free(audience: Audience, tag: str | None, current: MergeField | None = None) -> None:
    if tag and tag in audience.merge_fields and audience.merge_fields[tag] is not current:
        raise invalid_resource(
            "The resource submitted could not be validated.",
            [
                {
                    "field": "tag",
                    "message": f'A merge field with the tag "{tag}" already exists for this list.',
                }
            ],
        )


async def list_fields(request: Request) -> Response:
    audience = list_audience(request)
    query = checked_query(request, PAGING | {"type", "required"})
    page = page_of(query)
    required = bool_param(query, "required")
    with audience.lock:
        fields = sorted(audience.merge_fields.values(), key=lambda d: d.merge_id)
        if query.get("type"):
            fields = [d for d in fields if d.type == query["type"]]
        if required is not None:
            fields = [d for d in fields if d.required == required]
        items = [d.to_json(audience.list_id) for d in page.cut(fields)]
    body = {"merge_fields": items, "list_id": audience.list_id, "total_items": len(fields), "_links": []}
    return JSONResponse(project(body, query))


async def create_field(request: Request) -> Response:
    audience = list_audience(request)
    checked_query(request, ())
    values = validate_definition(await json_body(request), creating=True)
    with audience.lock:
        if len(audience.merge_fields) >= MAX_MERGE_FIELDS:
            raise invalid_resource(
                f"This list already has the maximum of {MAX_MERGE_FIELDS} merge fields.",
                [{"field": "", "message": f"At most {MAX_MERGE_FIELDS} merge fields per audience."}],
            )
        _check_tag_free(audience, values.get("tag"))
        definition = audience.add_merge_field(values)
    return JSONResponse(definition.to_json(audience.list_id))


def _field(request: Request, audience: Audience) -> MergeField:
    definition = audience.merge_field_by_id(request.path_params["merge_id"])
    if definition is None:
        raise not_found()
    return definition


async def get_field(request: Request) -> Response:
    audience = list_audience(request)
    query = checked_query(request, {"fields", "exclude_fields"})
    return JSONResponse(project(_field(request, audience).to_json(audience.list_id), query))


async def update_field(request: Request) -> Response:
    audience = list_audience(request)
    checked_query(request, ())
    values = validate_definition(await json_body(request), creating=False)
    with audience.lock:
        definition = _field(request, audience)
        _check_tag_free(audience, values.get("tag"), definition)
        if "tag" in values and values["tag"] != definition.tag:
            audience.merge_fields[values["tag"]] = audience.merge_fields.pop(definition.tag)
            for member in audience.members.values():
                if definition.tag in member.merge_fields:
                    member.merge_fields[values["tag"]] = member.merge_fields.pop(definition.tag)
        for key, value in values.items():
            setattr(definition, key, value)
    return JSONResponse(definition.to_json(audience.list_id))


async def delete_field(request: Request) -> Response:
    audience = list_audience(request)
    checked_query(request, ())
    with audience.lock:
        audience.drop_merge_field(_field(request, audience))
    return Response(status_code=204)
