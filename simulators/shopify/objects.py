"""Field resolvers for the object types the simulator serves, keyed by GraphQL type name.

Store records stay plain dataclasses; these tables turn them into Shopify's shapes on demand (only the
fields a query selects are computed). Money, `UnsignedInt64` and `DateTime` values are strings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from simulators.shopify.context import Context, iso, money, money_bag
from simulators.shopify.state import (
    CustomerRecord,
    DefinitionRecord,
    LineRecord,
    MetafieldRecord,
    OrderRecord,
    RefundRecord,
    resolve_namespace,
)

Resolver = Callable[[Any, Context, dict[str, Any]], Any]

MARKETING_STATE = {
    "subscribed": "SUBSCRIBED",
    "unsubscribed": "UNSUBSCRIBED",
    "never_subscribed": "NOT_SUBSCRIBED",
}
COUNTRY_NAMES = {
    "US": "United States",
    "CA": "Canada",
    "GB": "United Kingdom",
    "DE": "Germany",
    "FR": "France",
    "NL": "Netherlands",
    "AU": "Australia",
    "JP": "Japan",
}


def _protected(what: str, getter: Resolver) -> Resolver:
    def resolve(record: Any, ctx: Context, args: dict[str, Any]) -> Any:
        ctx.require_protected(what)
        return getter(record, ctx, args)

    return resolve


def _email_address(c: CustomerRecord, ctx: Context, _: dict[str, Any]) -> dict[str, Any]:
    state = MARKETING_STATE.get(c.consent, "NOT_SUBSCRIBED")
    return {
        "emailAddress": c.email,
        "marketingState": state,
        "marketingOptInLevel": None if state == "NOT_SUBSCRIBED" else "SINGLE_OPT_IN",
        "marketingUpdatedAt": None if state == "NOT_SUBSCRIBED" else iso(c.created_at),
    }


def _consent(c: CustomerRecord, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    current = _email_address(c, ctx, args)
    return {
        "marketingState": current["marketingState"],
        "marketingOptInLevel": current["marketingOptInLevel"],
        "consentUpdatedAt": current["marketingUpdatedAt"],
    }


def _address(c: CustomerRecord, ctx: Context, _: dict[str, Any]) -> dict[str, Any] | None:
    if not c.country:
        return None
    return {
        "id": f"gid://shopify/MailingAddress/{c.id}?model_name=CustomerAddress",
        "country": COUNTRY_NAMES.get(c.country, c.country),
        "countryCodeV2": c.country,
        "countryCode": c.country,
        "city": None,
        "firstName": c.first_name,
        "lastName": c.last_name,
    }


def _customer_metafield(c: CustomerRecord, ctx: Context, args: dict[str, Any]) -> MetafieldRecord | None:
    ctx.require("read_customers", "metafield")
    return ctx.state.metafields.get(c.gid, {}).get((resolve_namespace(args.get("namespace")), args["key"]))


CUSTOMER: dict[str, Resolver] = {
    "id": lambda c, ctx, a: c.gid,
    "legacyResourceId": lambda c, ctx, a: str(c.id),
    "createdAt": lambda c, ctx, a: iso(c.created_at),
    "updatedAt": lambda c, ctx, a: iso(c.updated_at),
    "firstName": _protected("firstName", lambda c, ctx, a: c.first_name),
    "lastName": _protected("lastName", lambda c, ctx, a: c.last_name),
    "displayName": lambda c, ctx, a: f"{c.first_name} {c.last_name}".strip() if ctx.protected_data else "",
    "email": _protected("email", lambda c, ctx, a: c.email),
    "phone": _protected("phone", lambda c, ctx, a: None),
    "note": lambda c, ctx, a: c.note,
    "state": lambda c, ctx, a: "ENABLED",
    "verifiedEmail": lambda c, ctx, a: True,
    "numberOfOrders": lambda c, ctx, a: str(c.number_of_orders),
    "amountSpent": lambda c, ctx, a: money(c.amount_spent, ctx.state.currency),
    "tags": lambda c, ctx, a: sorted(c.tags, key=str.lower),
    "defaultEmailAddress": _protected("defaultEmailAddress", _email_address),
    "emailMarketingConsent": _consent,
    "defaultAddress": _protected("defaultAddress", _address),
    "metafield": _customer_metafield,
}


def _financial_status(o: OrderRecord) -> str:
    if o.cancelled_at is not None and not o.refunds:
        return "VOIDED"
    if o.refunds:
        return "REFUNDED" if o.refunded >= o.total else "PARTIALLY_REFUNDED"
    return "PAID"


def _order_customer(o: OrderRecord, ctx: Context, _: dict[str, Any]) -> CustomerRecord | None:
    if o.customer_id is None:
        return None
    ctx.require("read_customers", "customer")
    return ctx.state.customer(o.customer_id)


ORDER: dict[str, Resolver] = {
    "id": lambda o, ctx, a: o.gid,
    "legacyResourceId": lambda o, ctx, a: str(o.id),
    "name": lambda o, ctx, a: f"#{o.number}",
    "email": _protected("email", lambda o, ctx, a: o.email),
    "createdAt": lambda o, ctx, a: iso(o.created_at),
    "updatedAt": lambda o, ctx, a: iso(o.updated_at),
    "processedAt": lambda o, ctx, a: iso(o.processed_at),
    "cancelledAt": lambda o, ctx, a: iso(o.cancelled_at),
    "cancelReason": lambda o, ctx, a: o.cancel_reason,
    "closed": lambda o, ctx, a: o.cancelled_at is not None,
    "closedAt": lambda o, ctx, a: iso(o.cancelled_at),
    "test": lambda o, ctx, a: o.test,
    "currencyCode": lambda o, ctx, a: o.currency,
    "customer": _order_customer,
    "discountCode": lambda o, ctx, a: o.discount_code,
    "discountCodes": lambda o, ctx, a: [o.discount_code] if o.discount_code else [],
    "displayFinancialStatus": lambda o, ctx, a: _financial_status(o),
    "tags": lambda o, ctx, a: sorted(o.tags),
    "totalPriceSet": lambda o, ctx, a: money_bag(o.total, o.currency),
    "currentTotalPriceSet": lambda o, ctx, a: money_bag(max(0.0, o.total - o.refunded), o.currency),
    "subtotalPriceSet": lambda o, ctx, a: money_bag(o.total + o.discount_total, o.currency),
    "totalDiscountsSet": lambda o, ctx, a: money_bag(o.discount_total, o.currency),
    "totalRefundedSet": lambda o, ctx, a: money_bag(o.refunded, o.currency),
    "refunds": lambda o, ctx, a: o.refunds[: a["first"]] if a.get("first") is not None else list(o.refunds),
}


def _product(line: LineRecord, ctx: Context, _: dict[str, Any]) -> dict[str, Any] | None:
    if line.product_id not in ctx.state.products:
        return None
    title, category = ctx.state.products[line.product_id]
    return {"id": f"gid://shopify/Product/{line.product_id}", "title": title, "productType": category}


def _variant(line: LineRecord, ctx: Context, _: dict[str, Any]) -> dict[str, Any] | None:
    if line.product_id not in ctx.state.products:
        return None
    return {
        "id": f"gid://shopify/ProductVariant/{line.product_id * 10 + 1}",
        "title": "Default Title",
        "sku": line.sku,
    }


def _line_money(amount: Callable[[LineRecord], float]) -> Resolver:
    return lambda line, ctx, a: money_bag(amount(line), ctx.state.currency)


LINE_ITEM: dict[str, Resolver] = {
    "id": lambda li, ctx, a: f"gid://shopify/LineItem/{li.id}",
    "name": lambda li, ctx, a: li.title,
    "title": lambda li, ctx, a: li.title,
    "sku": lambda li, ctx, a: li.sku,
    "quantity": lambda li, ctx, a: li.quantity,
    "currentQuantity": lambda li, ctx, a: li.quantity - li.refunded_quantity,
    "product": _product,
    "variant": _variant,
    "originalUnitPriceSet": _line_money(lambda li: li.unit_price),
    "discountedUnitPriceSet": _line_money(lambda li: li.unit_price - li.discount / max(li.quantity, 1)),
    "originalTotalSet": _line_money(lambda li: li.unit_price * li.quantity),
    "discountedTotalSet": _line_money(lambda li: li.unit_price * li.quantity - li.discount),
    "totalDiscountSet": _line_money(lambda li: li.discount),
}

REFUND: dict[str, Resolver] = {
    "id": lambda r, ctx, a: f"gid://shopify/Refund/{r.id}",
    "createdAt": lambda r, ctx, a: iso(r.created_at),
    "updatedAt": lambda r, ctx, a: iso(r.created_at),
    "note": lambda r, ctx, a: r.note,
    "totalRefundedSet": lambda r, ctx, a: money_bag(r.amount, ctx.state.currency),
}


def compare_digest(m: MetafieldRecord) -> str:
    """Opaque digest of the stored value: changes whenever the value or its type changes."""
    raw = json.dumps([m.owner_gid, m.namespace, m.key, m.value, m.type, iso(m.updated_at)])
    return hashlib.sha256(raw.encode()).hexdigest()


def _json_value(m: MetafieldRecord) -> Any:
    if m.type in ("json",) or m.type.startswith("list."):
        return json.loads(m.value)
    if m.type == "number_integer":
        return int(m.value)
    if m.type == "boolean":
        return m.value == "true"
    return m.value


def _definition_of(m: MetafieldRecord, ctx: Context, _: dict[str, Any]) -> DefinitionRecord | None:
    return ctx.state.definition_for("CUSTOMER", m.namespace, m.key)


METAFIELD: dict[str, Resolver] = {
    "id": lambda m, ctx, a: f"gid://shopify/Metafield/{m.id}",
    "namespace": lambda m, ctx, a: m.namespace,
    "key": lambda m, ctx, a: m.key,
    "value": lambda m, ctx, a: m.value,
    "type": lambda m, ctx, a: m.type,
    "jsonValue": lambda m, ctx, a: _json_value(m),
    "compareDigest": lambda m, ctx, a: compare_digest(m),
    "createdAt": lambda m, ctx, a: iso(m.created_at),
    "updatedAt": lambda m, ctx, a: iso(m.updated_at),
    "ownerType": lambda m, ctx, a: "CUSTOMER",
    "definition": _definition_of,
}

DEFINITION: dict[str, Resolver] = {
    "id": lambda d, ctx, a: f"gid://shopify/MetafieldDefinition/{d.id}",
    "name": lambda d, ctx, a: d.name,
    "namespace": lambda d, ctx, a: d.namespace,
    "key": lambda d, ctx, a: d.key,
    "description": lambda d, ctx, a: d.description,
    "ownerType": lambda d, ctx, a: d.owner_type,
    "type": lambda d, ctx, a: {"name": d.type, "category": _type_category(d.type)},
    "pinnedPosition": lambda d, ctx, a: d.pinned_position,
}


def _type_category(type_name: str) -> str:
    if type_name.startswith("number_"):
        return "NUMBER"
    if type_name in ("date", "date_time"):
        return "DATE_TIME"
    return {"boolean": "TRUE_FALSE", "json": "JSON"}.get(type_name, "TEXT")


TYPE_OF_RECORD: dict[type, str] = {
    CustomerRecord: "Customer",
    OrderRecord: "Order",
    LineRecord: "LineItem",
    RefundRecord: "Refund",
    MetafieldRecord: "Metafield",
    DefinitionRecord: "MetafieldDefinition",
}

OBJECT_RESOLVERS: dict[str, dict[str, Resolver]] = {
    "Customer": CUSTOMER,
    "Order": ORDER,
    "LineItem": LINE_ITEM,
    "Refund": REFUND,
    "Metafield": METAFIELD,
    "MetafieldDefinition": DEFINITION,
}
