"""Query-string validation for one operation: only the parameters the spec lists, each value in its enum.

Unknown parameters, repeated parameters, unknown sparse fields, sorts or includes, and `page[size]`
outside the operation's range are all 400s naming the parameter (`source.parameter`), as on the real API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.datastructures import QueryParams

from simulators.klaviyo.errors import invalid
from simulators.klaviyo.filters import Condition, parse_filter
from simulators.klaviyo.operations import Operation


@dataclass(frozen=True)
class Query:
    fields: dict[str, frozenset[str]] = field(default_factory=dict)
    additional: frozenset[str] = frozenset()
    includes: frozenset[str] = frozenset()
    sort: str | None = None
    filter_text: str = ""
    conditions: tuple[Condition, ...] = ()
    page_size: int | None = None
    cursor: str | None = None

    def fieldset(self, kind: str) -> frozenset[str] | None:
        return self.fields.get(kind)


def _listed(name: str, value: str, allowed: frozenset[str]) -> frozenset[str]:
    items = value.split(",")
    for item in items:
        if item not in allowed:
            raise invalid(f"'{item}' is not a valid value for '{name}'.", parameter=name)
    return frozenset(items)


def _page_size(operation: Operation, value: str | None) -> int | None:
    spec = operation.page_size
    if spec is None:
        return None
    if value is None:
        return spec.default
    try:
        size = int(value)
    except ValueError:
        size = None
    if size is None or not spec.minimum <= size <= spec.maximum:
        raise invalid(
            f"Page size must be an integer between {spec.minimum} and {spec.maximum}.", parameter="page[size]"
        )
    return size


def parse_query(operation: Operation, params: QueryParams) -> Query:
    allowed = operation.allowed_params()
    seen: set[str] = set()
    for name, _ in params.multi_items():
        if name not in allowed:
            raise invalid(f"'{name}' is not a valid query parameter for this endpoint.", parameter=name)
        if name in seen:
            raise invalid(f"'{name}' was given more than once.", parameter=name)
        seen.add(name)
    fields = {
        kind: _listed(f"fields[{kind}]", params[f"fields[{kind}]"], names)
        for kind, names in operation.fields.items()
        if f"fields[{kind}]" in params
    }
    sort = params.get("sort")
    if sort is not None and sort not in operation.sorts:
        raise invalid(f"'{sort}' is not a valid sort for this endpoint.", parameter="sort")
    filter_text = params.get("filter", "")
    return Query(
        fields=fields,
        additional=_listed(
            "additional-fields[profile]", params["additional-fields[profile]"], operation.additional_fields
        )
        if "additional-fields[profile]" in params
        else frozenset(),
        includes=_listed("include", params["include"], operation.includes)
        if "include" in params
        else frozenset(),
        sort=sort,
        filter_text=filter_text,
        conditions=tuple(parse_filter(filter_text, operation.filters)) if "filter" in params else (),
        page_size=_page_size(operation, params.get("page[size]")),
        cursor=params.get("page[cursor]"),
    )
