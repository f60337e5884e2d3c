"""Conformance: every document espd's operations use, and every response the simulator sends for them,
validate against Shopify's OFFICIAL 2026-04 introspection (not the simulator's own subset).

Responses are checked by re-executing the document over the response data against the official
schema: graphql-core then enforces non-null fields, list shapes, enum values and object types, and the
echo resolver enforces that string-encoded scalars (ID, DateTime, Decimal, Money, UnsignedInt64, URL)
really are strings in the right format. The official schema fails graphql-core's own schema check in
4 known places (interface/implementation deprecation mismatches, notes §10); the test asserts exactly
those and then clears graphql-core's cached result so documents can be validated.
"""

from __future__ import annotations

import gzip
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    build_client_schema,
    execute,
    get_named_type,
    parse,
    validate,
    validate_schema,
)

from simulators.shopify.make_schema_subset import subset_introspection
from tests.simulators import test_shopify_bulk as bulk
from tests.simulators import test_shopify_reads as reads
from tests.simulators import test_shopify_writes as writes
from tests.simulators.test_shopify_support import Shopify, api, clock, gid
from tests.support.spec_conformance import SPECS_DIR

__all__ = ["api", "clock"]  # fixtures used by this module

SPEC = SPECS_DIR / "shopify" / "admin_2026-04.json.gz"
STRING_SCALARS = {
    "ID": re.compile(r"^gid://shopify/\w+/\d+(\?.*)?$"),
    "DateTime": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"),
    "Decimal": re.compile(r"^-?\d+(\.\d+)?$"),
    "Money": re.compile(r"^-?\d+(\.\d+)?$"),
    "UnsignedInt64": re.compile(r"^\d+$"),
    "URL": re.compile(r"^https?://"),
    "String": re.compile(r"", re.DOTALL),
}


@cache
def introspection() -> dict[str, Any]:
    with gzip.open(SPEC, "rt", encoding="utf-8") as handle:
        return json.load(handle)["data"]


@cache
def official_schema() -> GraphQLSchema:
    schema = build_client_schema(introspection())
    known = validate_schema(schema)
    assert len(known) == 4 and all("deprecated" in e.message for e in known), [e.message for e in known]
    schema._validation_errors = []  # type: ignore[attr-defined]  # accepted as known, see module doc
    return schema


def _echo(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    value = source.get(info.path.key) if isinstance(source, dict) else None
    named = get_named_type(info.return_type).name
    pattern = STRING_SCALARS.get(named)
    for item in value if isinstance(value, list) else [value]:
        if pattern is not None and item is not None and not (isinstance(item, str) and pattern.match(item)):
            raise GraphQLError(
                f"{named} value {item!r} at {info.path.as_list()} is not a valid {named} string"
            )
    return value


def _type_from_gid(value: Any, info: GraphQLResolveInfo, abstract_type: Any) -> str | None:
    return value.get("id", "").split("/")[3] if isinstance(value, dict) and "id" in value else None


def assert_conforms(document: str, variables: dict[str, Any], body: dict[str, Any]) -> None:
    schema = official_schema()
    parsed = parse(document)
    assert validate(schema, parsed) == []
    assert "errors" not in body, body["errors"]
    result = execute(
        schema,
        parsed,
        root_value=body["data"],
        variable_values=variables,
        field_resolver=_echo,
        type_resolver=_type_from_gid,
    )
    assert isinstance(result, ExecutionResult)
    assert result.errors is None, result.errors
    assert result.data == body["data"]
    cost = body["extensions"]["cost"]
    assert set(cost) == {"requestedQueryCost", "actualQueryCost", "throttleStatus"}
    assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}


def test_subset_is_a_faithful_slice_of_the_official_schema() -> None:
    """Every type and field in the vendored subset exists in the official schema with the same type."""
    full = {t["name"]: t for t in introspection()["__schema"]["types"]}
    for sliced in subset_introspection(introspection()["__schema"])["types"]:
        official = full[sliced["name"]]
        by_name = {f["name"]: f for f in official.get("fields") or []}
        for field in sliced.get("fields") or []:
            assert field["type"] == by_name[field["name"]]["type"], (sliced["name"], field["name"])
    committed = (Path(__file__).resolve().parents[2] / "simulators/shopify/schema_subset.graphql").read_text()
    assert "type Customer implements Node" in committed


def run(api: Shopify, document: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = api.gql(document, variables)
    assert_conforms(document, variables, body)
    return body


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        (reads.CUSTOMERS, {"first": 5, "sort": "UPDATED_AT", "q": "updated_at:>='2026-01-01T00:00:00Z'"}),
        (reads.CUSTOMERS, {"last": 3}),
        (reads.ORDERS, {"q": "status:any", "sort": "UPDATED_AT"}),
        (writes.DEFINITIONS, {"ns": "$app:espd"}),
        (f'{{ customer(id: "{gid(1)}") {{ id orders(first: 3) {{ nodes {{ id name }} }} }} }}', {}),
    ],
)
def test_read_responses_conform(api: Shopify, document: str, variables: dict[str, Any]) -> None:
    run(api, document, variables)


def test_write_responses_conform(api: Shopify) -> None:
    created = run(api, writes.CREATE, {"d": writes.CHURN})
    assert created["data"]["metafieldDefinitionCreate"]["createdDefinition"]
    run(api, writes.CREATE, {"d": writes.CHURN})  # TAKEN userErrors
    run(api, writes.SET, {"m": [writes.entry(1, "0.5")]})
    run(api, writes.SET, {"m": [writes.entry(1, "bad")]})  # INVALID_VALUE userErrors, metafields null
    ident = {"ownerId": gid(1), "namespace": "$app:espd", "key": "churn_score"}
    run(api, writes.DELETE, {"m": [ident, ident]})
    run(api, writes.TAGS % "tagsAdd", {"id": gid(1), "tags": ["espd-a"]})
    run(api, writes.TAGS % "tagsRemove", {"id": gid(1), "tags": ["espd-a"]})


def test_bulk_responses_conform(api: Shopify) -> None:
    started = run(api, bulk.RUN, {"q": bulk.ORDERS_EXPORT})
    op_id = started["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
    run(api, bulk.RUN, {"q": bulk.ORDERS_EXPORT})  # OPERATION_IN_PROGRESS userErrors
    api.clock.advance(1)
    done = run(api, bulk.POLL, {"id": op_id})
    assert done["data"]["bulkOperation"]["url"].startswith("http://127.0.0.1:")
    run(api, f'{{ node(id: "{op_id}") {{ id ... on BulkOperation {{ status url }} }} }}', {})


def test_the_response_check_catches_wrong_shapes(api: Shopify) -> None:
    """The checker itself must be able to fail: a number where Shopify sends a Decimal string, a bad
    enum value, and a null in a non-null field are each rejected."""
    document = "{ customers(first: 1) { nodes { id amountSpent { amount } defaultEmailAddress "
    document += "{ marketingState } } } }"
    body = api.gql(document)
    node = body["data"]["customers"]["nodes"][0]
    for field, broken in (
        ("amountSpent", {"amount": 12.5}),
        ("defaultEmailAddress", {"marketingState": "OPTED_IN"}),
        ("id", None),
    ):
        bad = {**body, "data": {"customers": {"nodes": [{**node, field: broken}]}}}
        with pytest.raises(AssertionError):
            assert_conforms(document, {}, bad)
