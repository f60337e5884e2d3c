"""Root query fields and nested connections: customers, orders, node lookups, definitions.

Every connection goes through `connection()`: search predicate, sorted index, cursor paging and the
paging faults (duplicate across pages, malformed records, records touched while paging).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from simulators.shopify.context import Context, invalid_id, parse_gid
from simulators.shopify.objects import Resolver
from simulators.shopify.paging import PageRequest, PagingError, SortedIndex, binding_for, paginate
from simulators.shopify.search import FieldGetter, compile_search, typed
from simulators.shopify.state import APP_ID, CustomerRecord, OrderRecord, resolve_namespace

KeyFn = Callable[[Any], tuple[Any, ...]]


def _ts(moment: Any) -> float:
    return moment.timestamp() if moment is not None else 0.0


CUSTOMER_SORT: dict[str, KeyFn] = {
    "ID": lambda c: (c.id,),
    "RELEVANCE": lambda c: (c.id,),
    "CREATED_AT": lambda c: (_ts(c.created_at), c.id),
    "UPDATED_AT": lambda c: (_ts(c.updated_at), c.id),
    "NAME": lambda c: (f"{c.first_name} {c.last_name}".lower(), c.id),
    "LOCATION": lambda c: (c.country, c.id),
}
ORDER_SORT: dict[str, KeyFn] = {
    "ID": lambda o: (o.id,),
    "PROCESSED_AT": lambda o: (_ts(o.processed_at), o.id),
    "CREATED_AT": lambda o: (_ts(o.created_at), o.id),
    "UPDATED_AT": lambda o: (_ts(o.updated_at), o.id),
    "ORDER_NUMBER": lambda o: (o.number, o.id),
    "TOTAL_PRICE": lambda o: (o.total, o.id),
    "CURRENT_TOTAL_PRICE": lambda o: (o.total - o.refunded, o.id),
}

CUSTOMER_SEARCH: dict[str, FieldGetter] = {
    "updated_at": typed("time", lambda c: c.updated_at),
    "created_at": typed("time", lambda c: c.created_at),
    "customer_date": typed("time", lambda c: c.created_at),
    "email": typed("text", lambda c: c.email),
    "first_name": typed("text", lambda c: c.first_name),
    "last_name": typed("text", lambda c: c.last_name),
    "country": typed("text", lambda c: c.country),
    "tag": typed("list", lambda c: c.tags),
    "tag_not": typed("list_not", lambda c: c.tags),
    "orders_count": typed("number", lambda c: c.number_of_orders),
    "total_spent": typed("number", lambda c: c.amount_spent),
    "amount_spent": typed("number", lambda c: c.amount_spent),
    "id": typed("number", lambda c: c.id),
}


def _order_statuses(o: OrderRecord) -> list[str]:
    return ["any", "cancelled", "closed"] if o.cancelled_at else ["any", "open", "not_closed"]


ORDER_SEARCH: dict[str, FieldGetter] = {
    "updated_at": typed("time", lambda o: o.updated_at),
    "created_at": typed("time", lambda o: o.created_at),
    "processed_at": typed("time", lambda o: o.processed_at),
    "customer_id": typed("number", lambda o: o.customer_id),
    "status": typed("list", _order_statuses),
    "test": typed("text", lambda o: "true" if o.test else "false"),
    "email": typed("text", lambda o: o.email),
    "name": typed("text", lambda o: f"#{o.number}"),
    "id": typed("number", lambda o: o.id),
    "tag": typed("list", lambda o: o.tags),
    "tag_not": typed("list_not", lambda o: o.tags),
}


def _cached_index(
    ctx: Context, name: str, sort_key: str, items: Callable[[], Iterable[Any]], key: KeyFn
) -> Any:
    """Top-level indexes are rebuilt only when the store changed since the last build."""
    state = ctx.state
    cached = state.index_cache.get((name, sort_key))
    if cached is not None and cached[0] == state.version:
        return cached[1]
    index = SortedIndex(items(), key)
    state.index_cache[(name, sort_key)] = (state.version, index)
    return index


def connection(
    ctx: Context,
    info: GraphQLResolveInfo,
    index: SortedIndex[Any],
    args: dict[str, Any],
    sort_key: str,
    matches: Callable[[Any], bool] = lambda _: True,
) -> dict[str, Any]:
    request = PageRequest(
        first=args.get("first"),
        after=args.get("after"),
        last=args.get("last"),
        before=args.get("before"),
        reverse=bool(args.get("reverse")),
        binding=binding_for(args.get("query"), sort_key, bool(args.get("reverse"))),
    )
    try:
        page = paginate(index, matches, request, duplicate=ctx.faults.duplicate_across_pages and not ctx.bulk)
    except PagingError as exc:
        raise GraphQLError(str(exc), extensions={"code": "BAD_REQUEST"}) from None
    edges = [{"cursor": page.cursor(key), "node": item} for key, item in page.entries]
    return {
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
        "pageInfo": {
            "hasNextPage": page.has_next,
            "hasPreviousPage": page.has_previous,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _search(
    ctx: Context, info: GraphQLResolveInfo, args: dict[str, Any], fields: dict[str, FieldGetter]
) -> Any:
    text = args.get("query")
    result = compile_search(text, fields, free_text=_free_text)
    if result.warnings:
        ctx.search.append({"path": list(info.path.as_list()), "query": text, "warnings": result.warnings})
    return result.predicate


def _free_text(record: Any) -> str:
    if isinstance(record, CustomerRecord):
        return f"{record.first_name} {record.last_name} {record.email}".lower()
    return f"#{getattr(record, 'number', '')} {getattr(record, 'email', '') or ''}".lower()


def customers(root: Any, ctx: Context, args: dict[str, Any], info: GraphQLResolveInfo) -> dict[str, Any]:
    ctx.require("read_customers", "customers")
    sort_key = args.get("sortKey", "ID")
    with ctx.state.lock:
        index = _cached_index(
            ctx, "customers", sort_key, lambda: ctx.state.customers.values(), CUSTOMER_SORT[sort_key]
        )
        result = connection(ctx, info, index, args, sort_key, _search(ctx, info, args, CUSTOMER_SEARCH))
        _apply_paging_faults(ctx, result)
    return result


def orders(root: Any, ctx: Context, args: dict[str, Any], info: GraphQLResolveInfo) -> dict[str, Any]:
    ctx.require("read_orders", "orders")
    sort_key = args.get("sortKey", "PROCESSED_AT")
    key = ORDER_SORT.get(sort_key, ORDER_SORT["ID"])
    predicate = _search(ctx, info, args, ORDER_SEARCH)
    all_orders = ctx.all_orders

    def matches(order: OrderRecord) -> bool:
        return ctx.state.order_visible(order, all_orders) and predicate(order)

    with ctx.state.lock:
        index = _cached_index(ctx, "orders", sort_key, lambda: ctx.state.orders.values(), key)
        return connection(ctx, info, index, args, sort_key, matches)


def _apply_paging_faults(ctx: Context, result: dict[str, Any]) -> None:
    """Malformed records in the page, and merchant edits landing between pages."""
    faults, state = ctx.faults, ctx.state
    every = faults.malformed_every
    if every and not ctx.bulk:
        for position, edge in enumerate(result["edges"], start=1):
            if position % every == 0:
                edge["node"] = replace(edge["node"], email="not-an-email", amount_spent=float("nan"))
        result["nodes"] = [edge["node"] for edge in result["edges"]]
    if faults.update_while_paging and state.customers:
        rng = random.Random(state.version)
        for cid in rng.sample(sorted(state.customers), min(faults.update_while_paging, len(state.customers))):
            state.touch_customer(cid)


def customer_orders(c: CustomerRecord, ctx: Context, args: dict[str, Any], info: GraphQLResolveInfo) -> Any:
    ctx.require("read_orders", "orders")
    sort_key = args.get("sortKey", "ID")
    predicate = _search(ctx, info, args, ORDER_SEARCH)
    visible = [o for o in ctx.state.orders_of(c.id) if ctx.state.order_visible(o, ctx.all_orders)]
    index = SortedIndex(visible, ORDER_SORT.get(sort_key, ORDER_SORT["ID"]))
    return connection(ctx, info, index, args, sort_key, predicate)


def customer_metafields(
    c: CustomerRecord, ctx: Context, args: dict[str, Any], info: GraphQLResolveInfo
) -> Any:
    ctx.require("read_customers", "metafields")
    records = ctx.state.metafields_of(c.gid)
    if args.get("namespace") is not None:
        namespace = resolve_namespace(args["namespace"])
        records = [m for m in records if m.namespace == namespace]
    if args.get("keys") is not None:
        wanted = set(args["keys"])
        records = [m for m in records if f"{m.namespace}.{m.key}" in wanted]
    return connection(ctx, info, SortedIndex(records, lambda m: (m.id,)), args, "ID")


def line_items(o: OrderRecord, ctx: Context, args: dict[str, Any], info: GraphQLResolveInfo) -> Any:
    return connection(ctx, info, SortedIndex(o.lines, lambda li: (li.id,)), args, "ID")


def metafield_definitions(root: Any, ctx: Context, args: dict[str, Any], info: GraphQLResolveInfo) -> Any:
    ctx.require("read_customers", "metafieldDefinitions")
    namespace = resolve_namespace(args["namespace"]) if args.get("namespace") is not None else None

    def matches(d: Any) -> bool:
        return (
            d.owner_type == args["ownerType"]
            and (namespace is None or d.namespace == namespace)
            and (args.get("key") is None or d.key == args["key"])
        )

    index = SortedIndex(ctx.state.definitions.values(), lambda d: (d.id,))
    return connection(ctx, info, index, args, "ID", matches)


def lookup(ctx: Context, gid: str, expected: str | None = None) -> Any:
    """The record behind a GID, honouring scopes and the 60-day order window; None when absent."""
    parsed = parse_gid(gid)
    if parsed is None:
        raise invalid_id(gid)
    kind, number = parsed
    if expected is not None and kind != expected:
        return None
    if kind == "Customer":
        ctx.require("read_customers", "customer")
        return ctx.state.customer(number)
    if kind == "Order":
        ctx.require("read_orders", "order")
        order = ctx.state.orders.get(number)
        return order if order is not None and ctx.state.order_visible(order, ctx.all_orders) else None
    if kind == "BulkOperation":
        return ctx.state.bulk.get(number)
    if kind == "MetafieldDefinition":
        return ctx.state.definitions.get(number)
    return None


def _count(matching: Iterable[Any], limit: int | None) -> dict[str, Any]:
    """`Count`: exact up to `limit` (default 10,000), then AT_LEAST the limit, as on Shopify."""
    total = sum(1 for _ in matching)
    if limit is not None and total > limit:
        return {"count": limit, "precision": "AT_LEAST"}
    return {"count": total, "precision": "EXACT"}


def customers_count(root: Any, ctx: Context, args: dict[str, Any], info: GraphQLResolveInfo) -> Any:
    ctx.require("read_customers", "customersCount")
    predicate = _search(ctx, info, args, CUSTOMER_SEARCH)
    with ctx.state.lock:
        return _count(filter(predicate, list(ctx.state.customers.values())), args.get("limit"))


def orders_count(root: Any, ctx: Context, args: dict[str, Any], info: GraphQLResolveInfo) -> Any:
    ctx.require("read_orders", "ordersCount")
    predicate = _search(ctx, info, args, ORDER_SEARCH)
    with ctx.state.lock:
        visible = [o for o in ctx.state.orders.values() if ctx.state.order_visible(o, ctx.all_orders)]
        return _count(filter(predicate, visible), args.get("limit"))


def current_app_installation(root: Any, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """The token's granted scopes, as `currentAppInstallation { accessScopes { handle } }` lists them
    (needs no scope itself: it is how an app learns what it may do)."""
    scopes = [{"handle": s, "description": None} for s in sorted(ctx.scopes)]
    return {"id": f"gid://shopify/AppInstallation/{APP_ID}", "accessScopes": scopes}


def _by_id(expected: str | None) -> Resolver:
    def resolve(root: Any, ctx: Context, args: dict[str, Any]) -> Any:
        return lookup(ctx, args["id"], expected)

    return resolve


QUERY_ROOT: dict[str, Any] = {
    "customers": customers,
    "orders": orders,
    "metafieldDefinitions": metafield_definitions,
    "customer": _by_id("Customer"),
    "order": _by_id("Order"),
    "node": _by_id(None),
    "bulkOperation": _by_id("BulkOperation"),
    "currentAppInstallation": current_app_installation,
    "customersCount": customers_count,
    "ordersCount": orders_count,
    "currentBulkOperation": lambda root, ctx, args: ctx.state.bulk.current(args.get("type", "QUERY")),
}
CONNECTION_FIELDS: dict[tuple[str, str], Any] = {
    ("Customer", "orders"): customer_orders,
    ("Customer", "metafields"): customer_metafields,
    ("Order", "lineItems"): line_items,
}
# Resolvers that need `info` (paths for search warnings, connection bindings).
NEEDS_INFO = {
    customers,
    orders,
    customers_count,
    orders_count,
    metafield_definitions,
    customer_orders,
    customer_metafields,
    line_items,
}
