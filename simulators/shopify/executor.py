"""Executes GraphQL documents with graphql-core against the vendored 2026-04 schema subset.

The field resolver dispatches by (parent type, field) to the tables in `queries`, `objects`,
`mutations` and `bulk`; plain dicts (money, addresses, payloads) fall back to key lookup. Bulk
operations advance their lifecycle whenever a client reads them, and run their export here so the
JSONL comes out of the very same resolvers as paged reads.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLResolveInfo,
    GraphQLSchema,
    build_schema,
    execute,
)

from simulators.harness import Faults
from simulators.shopify.bulk import BULK_OPERATION, BulkOperation, check_bulk_query, flatten, to_jsonl
from simulators.shopify.context import Context
from simulators.shopify.mutations import MUTATIONS
from simulators.shopify.objects import OBJECT_RESOLVERS, TYPE_OF_RECORD
from simulators.shopify.queries import CONNECTION_FIELDS, NEEDS_INFO, QUERY_ROOT

SCHEMA_FILE = Path(__file__).with_name("schema_subset.graphql")


@cache
def schema() -> GraphQLSchema:
    """The subset schema, built once per process."""
    return build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))


def resolve_field(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    ctx: Context = info.context
    parent, name = info.parent_type.name, info.field_name
    if parent == "QueryRoot":
        resolver = QUERY_ROOT[name]
        return resolver(source, ctx, args, info) if resolver in NEEDS_INFO else resolver(source, ctx, args)
    if parent == "Mutation":
        return (
            run_bulk_query(ctx, args)
            if name == "bulkOperationRunQuery"
            else MUTATIONS[name](source, ctx, args)
        )
    if (parent, name) in CONNECTION_FIELDS:
        return CONNECTION_FIELDS[(parent, name)](source, ctx, args, info)
    if isinstance(source, BulkOperation):
        advance(source, ctx)
        return BULK_OPERATION[name](source, ctx, args)
    table = OBJECT_RESOLVERS.get(parent)
    if table is not None and name in table:
        return table[name](source, ctx, args)
    return source.get(name) if isinstance(source, dict) else getattr(source, name, None)


def resolve_type(value: Any, info: GraphQLResolveInfo, abstract_type: Any) -> str | None:
    if isinstance(value, BulkOperation):
        return "BulkOperation"
    return TYPE_OF_RECORD.get(type(value))


def run(
    document: DocumentNode, ctx: Context, variables: dict[str, Any], operation: str | None
) -> ExecutionResult:
    result = execute(
        schema(),
        document,
        context_value=ctx,
        variable_values=variables,
        operation_name=operation,
        field_resolver=resolve_field,
        type_resolver=resolve_type,
    )
    assert isinstance(result, ExecutionResult)  # every resolver is synchronous
    return result


def run_bulk_query(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    store = ctx.state.bulk
    document, problem = check_bulk_query(schema(), args["query"])
    if problem is not None:
        return {"bulkOperation": None, "userErrors": [problem]}
    with ctx.state.lock:
        for op in list(store.operations.values()):
            advance(op, ctx)
        if store.in_progress() >= store.concurrency:
            code = "OPERATION_IN_PROGRESS" if store.concurrency == 1 else "LIMIT_REACHED"
            message = "A bulk query operation for this app and shop is already in progress."
            return {"bulkOperation": None, "userErrors": [{"field": None, "message": message, "code": code}]}
        assert document is not None
        op = store.create(args["query"], document, ctx.scopes, ctx.state.now())
    return {"bulkOperation": op, "userErrors": []}


def advance(op: BulkOperation, ctx: Context) -> None:
    """Move CREATED -> RUNNING -> COMPLETED/FAILED by elapsed time; run the export on completion."""
    store = ctx.state.bulk
    if op.status not in ("CREATED", "RUNNING"):
        return
    elapsed = store.clock() - op.created
    if elapsed < store.created_seconds:
        return
    if elapsed < store.created_seconds + store.running_seconds:
        op.status = "RUNNING"
        return
    export_ctx = Context(ctx.state, op.scopes, Faults(), ctx.base_url, ctx.protected_data, bulk=True)
    with ctx.state.lock:
        result = run(op.document, export_ctx, {}, None)
    op.completed_at = ctx.state.now()
    op.expires = store.clock() + store.url_ttl_seconds
    if result.errors:
        denied = any((e.extensions or {}).get("code") == "ACCESS_DENIED" for e in result.errors)
        _fail(op, "ACCESS_DENIED" if denied else "INTERNAL_SERVER_ERROR", [])
        return
    rows, roots = flatten(result.data or {})
    if store.fail_next is not None:
        code, store.fail_next = store.fail_next, None
        _fail(op, code, rows[: len(rows) // 2])
        return
    op.status, op.body = "COMPLETED", to_jsonl(rows)
    op.object_count, op.root_count = len(rows), roots


def _fail(op: BulkOperation, code: str, partial: list[dict[str, Any]]) -> None:
    op.status, op.error_code = "FAILED", code
    op.body = to_jsonl(partial) if partial else None
    op.object_count = len(partial)
    op.root_count = sum(1 for row in partial if "__parentId" not in row)
