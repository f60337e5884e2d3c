"""Generate `schema_subset.graphql` from Shopify's official 2026-04 introspection.

The simulator must run without /work/shared (the 10 MB introspection sits beside the repo only in dev
and CI), so it serves a committed SDL subset: the root fields espd uses and, per object type, the fields
listed in `KEEP` below. Everything else in the subset (arguments, input objects, enums, scalars,
deprecation reasons) is copied verbatim from the introspection, never written by hand, so a document
valid against the subset is valid against Shopify's schema. Descriptions are dropped to keep the file
small.

Regenerate after changing `KEEP`:

    .venv/bin/python -m simulators.shopify.make_schema_subset \\
        ../shared/specs/shopify/admin_2026-04.json.gz simulators/shopify/schema_subset.graphql
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

from graphql import build_client_schema, print_schema

ALL = "*"

# Object and interface types the simulator serves, with the fields it resolves. ALL = every field
# whose type is itself in the subset (payloads, connections, edges, errors).
KEEP: dict[str, list[str] | str] = {
    "QueryRoot": [
        "customer",
        "customers",
        "order",
        "orders",
        "node",
        "bulkOperation",
        "currentBulkOperation",
        "metafieldDefinitions",
        "currentAppInstallation",
        "customersCount",
        "ordersCount",
    ],
    "Mutation": [
        "metafieldDefinitionCreate",
        "metafieldsSet",
        "metafieldsDelete",
        "tagsAdd",
        "tagsRemove",
        "bulkOperationRunQuery",
    ],
    "Node": ALL,
    "DisplayableError": ALL,
    "Customer": [
        "id",
        "legacyResourceId",
        "createdAt",
        "updatedAt",
        "firstName",
        "lastName",
        "displayName",
        "email",
        "phone",
        "note",
        "state",
        "verifiedEmail",
        "numberOfOrders",
        "amountSpent",
        "tags",
        "defaultEmailAddress",
        "emailMarketingConsent",
        "defaultAddress",
        "orders",
        "metafield",
        "metafields",
    ],
    "CustomerEmailAddress": ["emailAddress", "marketingState", "marketingOptInLevel", "marketingUpdatedAt"],
    "CustomerEmailMarketingConsentState": ["marketingState", "marketingOptInLevel", "consentUpdatedAt"],
    "MailingAddress": ["id", "country", "countryCode", "countryCodeV2", "city", "firstName", "lastName"],
    "MoneyV2": ALL,
    "MoneyBag": ALL,
    "PageInfo": ALL,
    "CustomerConnection": ALL,
    "CustomerEdge": ALL,
    "OrderConnection": ALL,
    "OrderEdge": ALL,
    "LineItemConnection": ALL,
    "LineItemEdge": ALL,
    "MetafieldConnection": ALL,
    "MetafieldEdge": ALL,
    "MetafieldDefinitionConnection": ALL,
    "MetafieldDefinitionEdge": ALL,
    "Order": [
        "id",
        "legacyResourceId",
        "name",
        "email",
        "createdAt",
        "updatedAt",
        "processedAt",
        "cancelledAt",
        "cancelReason",
        "closed",
        "closedAt",
        "test",
        "currencyCode",
        "customer",
        "discountCode",
        "discountCodes",
        "displayFinancialStatus",
        "tags",
        "totalPriceSet",
        "currentTotalPriceSet",
        "subtotalPriceSet",
        "totalDiscountsSet",
        "totalRefundedSet",
        "refunds",
        "lineItems",
    ],
    "LineItem": [
        "id",
        "name",
        "title",
        "sku",
        "quantity",
        "currentQuantity",
        "product",
        "variant",
        "originalUnitPriceSet",
        "discountedUnitPriceSet",
        "originalTotalSet",
        "discountedTotalSet",
        "totalDiscountSet",
    ],
    "Refund": ["id", "createdAt", "updatedAt", "note", "totalRefundedSet"],
    "Product": ["id", "title", "productType"],
    "ProductVariant": ["id", "title", "sku"],
    "Metafield": [
        "id",
        "namespace",
        "key",
        "value",
        "type",
        "jsonValue",
        "compareDigest",
        "createdAt",
        "updatedAt",
        "ownerType",
        "definition",
    ],
    "MetafieldDefinition": [
        "id",
        "name",
        "namespace",
        "key",
        "description",
        "ownerType",
        "type",
        "pinnedPosition",
    ],
    "MetafieldDefinitionType": ["name", "category"],
    "MetafieldsSetPayload": ALL,
    "MetafieldsSetUserError": ALL,
    "MetafieldsDeletePayload": ALL,
    "MetafieldIdentifier": ALL,
    "UserError": ALL,
    "MetafieldDefinitionCreatePayload": ALL,
    "MetafieldDefinitionCreateUserError": ALL,
    "TagsAddPayload": ALL,
    "TagsRemovePayload": ALL,
    "BulkOperation": ALL,
    "BulkOperationRunQueryPayload": ALL,
    "BulkOperationUserError": ALL,
    "AppInstallation": ["id", "accessScopes"],
    "AccessScope": ["handle", "description"],
    "Count": ALL,
}


def _named(type_ref: dict[str, Any]) -> str:
    while type_ref.get("ofType"):
        type_ref = type_ref["ofType"]
    return type_ref["name"]


def _input_closure(types: dict[str, dict[str, Any]], roots: set[str]) -> set[str]:
    """Every input object, enum and scalar reachable from `roots` through input fields."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for field in types[name].get("inputFields") or []:
            todo.append(_named(field["type"]))
    return seen


def _strip(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "description": None}


def subset_introspection(schema: dict[str, Any]) -> dict[str, Any]:
    """Filter an introspection `__schema` down to KEEP plus the input/enum/scalar types it needs."""
    types = {t["name"]: t for t in schema["types"]}
    kept_outputs = set(KEEP)
    leaves = {n for n, t in types.items() if t["kind"] in ("SCALAR", "ENUM")}
    arg_roots: set[str] = set()
    filtered: dict[str, dict[str, Any]] = {}
    for name, wanted in KEEP.items():
        source = types[name]
        by_name = {f["name"]: f for f in source["fields"]}
        names = [f for f in by_name if _named(by_name[f]["type"]) in kept_outputs | leaves]
        if wanted != ALL:
            missing = [f for f in wanted if f not in names]
            if missing:
                raise SystemExit(f"{name}: fields {missing} missing or typed outside the subset")
            names = list(wanted)
        fields = []
        for field_name in names:
            field = by_name[field_name]
            arg_roots.update(_named(a["type"]) for a in field["args"])
            arg_roots.add(_named(field["type"]))
            fields.append({**_strip(field), "args": [_strip(a) for a in field["args"]]})
        interfaces = [i for i in source.get("interfaces") or [] if i["name"] in kept_outputs]
        possible = [p for p in source.get("possibleTypes") or [] if p["name"] in kept_outputs]
        filtered[name] = {
            **_strip(source),
            "fields": fields,
            "interfaces": interfaces if source["kind"] == "OBJECT" else [],
            "possibleTypes": possible if source["kind"] == "INTERFACE" else None,
        }
    for name in _input_closure(types, {n for n in arg_roots if n not in kept_outputs}):
        source = types[name]
        entry = _strip(source)
        if source.get("inputFields"):
            entry["inputFields"] = [_strip(f) for f in source["inputFields"]]
        if source.get("enumValues"):
            entry["enumValues"] = [_strip(v) for v in source["enumValues"]]
        filtered[name] = entry
    return {
        "queryType": schema["queryType"],
        "mutationType": schema["mutationType"],
        "subscriptionType": None,
        "directives": [],
        "types": sorted(filtered.values(), key=lambda t: t["name"]),
    }


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit(__doc__)
    with gzip.open(argv[1], "rt", encoding="utf-8") as handle:
        full = json.load(handle)["data"]["__schema"]
    sdl = print_schema(build_client_schema({"__schema": subset_introspection(full)}))
    header = "# Generated by simulators/shopify/make_schema_subset.py from Shopify's 2026-04 introspection.\n"
    Path(argv[2]).write_text(header + sdl + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
