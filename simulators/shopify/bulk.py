"""Bulk query operations: validation, lifecycle, JSONL results (notes §2.3, §9.9).

`bulkOperationRunQuery` accepts one top-level field with 1 to 5 connections nested at most 2 deep,
and only `concurrency` queries at a time per shop. An operation is CREATED, then RUNNING, then
COMPLETED (or FAILED) by elapsed time on the injectable clock; the export runs against the store when
it completes. Results are JSONL, one object per line, nested connection nodes as their own lines with
`__parentId`, served by the simulator at a URL that expires.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
)

from simulators.shopify.context import Context, iso
from simulators.shopify.cost import Walk, is_connection

MAX_CONNECTIONS = 5
MAX_DEPTH = 2
URL_TTL_SECONDS = 7 * 24 * 3600


@dataclass
class BulkOperation:
    id: int
    query: str
    document: DocumentNode
    scopes: frozenset[str]
    created: float  # clock reading
    created_at: datetime
    type: str = "QUERY"
    status: str = "CREATED"
    error_code: str | None = None
    completed_at: datetime | None = None
    body: bytes | None = None  # the JSONL, once COMPLETED (or the partial data when FAILED)
    root_count: int = 0
    object_count: int = 0
    token: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    expires: float = 0.0

    @property
    def gid(self) -> str:
        return f"gid://shopify/BulkOperation/{self.id}"


class BulkStore:
    """Bulk operations of one shop. `fail_next` injects FAILED (with partial data) for the next run."""

    def __init__(
        self,
        clock: Callable[[], float],
        concurrency: int = 1,
        created_seconds: float = 0.05,
        running_seconds: float = 0.2,
        url_ttl_seconds: float = URL_TTL_SECONDS,
    ) -> None:
        self.clock = clock
        self.concurrency = concurrency
        self.created_seconds = created_seconds
        self.running_seconds = running_seconds
        self.url_ttl_seconds = url_ttl_seconds
        self.operations: dict[int, BulkOperation] = {}
        self.fail_next: str | None = None  # a BulkOperationErrorCode
        self._next = 1000

    def get(self, number: int) -> BulkOperation | None:
        return self.operations.get(number)

    def current(self, op_type: str) -> BulkOperation | None:
        mine = [op for op in self.operations.values() if op.type == op_type]
        return max(mine, key=lambda op: op.id) if mine else None

    def in_progress(self) -> int:
        return sum(1 for op in self.operations.values() if op.status in ("CREATED", "RUNNING"))

    def create(
        self, query: str, document: DocumentNode, scopes: frozenset[str], now: datetime
    ) -> BulkOperation:
        self._next += 1
        op = BulkOperation(self._next, query, document, scopes, self.clock(), now)
        self.operations[op.id] = op
        return op


def _problem(message: str) -> dict[str, Any]:
    return {"field": ["query"], "message": message, "code": "INVALID"}


def check_bulk_query(schema: GraphQLSchema, query: str) -> tuple[DocumentNode | None, dict[str, Any] | None]:
    """Parse and check a bulk query: (document, None) when acceptable, else (None, userError)."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return None, _problem(f"Invalid bulk query: {exc.message}")
    errors = validate(schema, document)
    if errors:
        return None, _problem(f"Invalid bulk query: {errors[0].message}")
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation != OperationType.QUERY:
        return None, _problem("Bulk queries must contain exactly one query operation.")
    walk = Walk(schema, {}, {})
    top = list(walk.fields(operations[0].selection_set))
    if len(top) != 1:
        return None, _problem("Bulk queries must contain exactly one top-level field.")
    assert schema.query_type is not None
    depths = _connection_depths(walk, schema.query_type, top[0], 0)
    if not depths:
        return None, _problem("Bulk queries must contain at least one connection.")
    if len(depths) > MAX_CONNECTIONS:
        return None, _problem(f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections.")
    if max(depths) > MAX_DEPTH:
        return None, _problem(
            f"Bulk queries cannot contain connections nested more than {MAX_DEPTH} levels deep."
        )
    return document, None


def _connection_depths(walk: Walk, parent: Any, node: FieldNode, depth: int) -> list[int]:
    """The nesting depth of every connection under (and including) `node`."""
    definition = parent.fields.get(node.name.value)
    if definition is None:
        return []
    named = get_named_type(definition.type)
    if is_leaf_type(named):
        return []
    here = depth + 1 if is_connection(named.name) else depth
    found = [here] if is_connection(named.name) else []
    for child in walk.fields(node.selection_set):
        found += _connection_depths(walk, named, child, here)
    return found


def flatten(data: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """JSONL rows from a bulk result: (rows, number of root rows)."""
    (root,) = data.values()
    rows: list[dict[str, Any]] = []
    roots = _connection_nodes(root) if _is_connection_value(root) else [root]
    for node in roots:
        _emit(node, None, rows)
    return rows, len(roots)


def _is_connection_value(value: Any) -> bool:
    return isinstance(value, dict) and ("edges" in value or "nodes" in value) and not {"id"} & value.keys()


def _connection_nodes(value: dict[str, Any]) -> list[dict[str, Any]]:
    if "nodes" in value:
        return list(value["nodes"])
    return [edge["node"] for edge in value.get("edges", []) if "node" in edge]


def _emit(node: dict[str, Any], parent_id: str | None, rows: list[dict[str, Any]]) -> None:
    row: dict[str, Any] = {}
    children: list[dict[str, Any]] = []
    for key, value in node.items():
        if _is_connection_value(value):
            children += _connection_nodes(value)
        else:
            row[key] = value
    if parent_id is not None:
        row["__parentId"] = parent_id
    rows.append(row)
    for child in children:
        _emit(child, node.get("id"), rows)


def to_jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row, separators=(",", ":")).encode() + b"\n" for row in rows)


def _url(ctx: Context, op: BulkOperation, kind: str) -> str:
    return f"{ctx.base_url}/bulk-results/{op.id}/{kind}/{op.token}.jsonl"


BULK_OPERATION: dict[str, Any] = {
    "id": lambda op, ctx, a: op.gid,
    "status": lambda op, ctx, a: op.status,
    "errorCode": lambda op, ctx, a: op.error_code,
    "createdAt": lambda op, ctx, a: iso(op.created_at),
    "completedAt": lambda op, ctx, a: iso(op.completed_at),
    "objectCount": lambda op, ctx, a: str(op.object_count),
    "rootObjectCount": lambda op, ctx, a: str(op.root_count),
    "fileSize": lambda op, ctx, a: str(len(op.body)) if op.body is not None else None,
    "url": lambda op, ctx, a: (
        _url(ctx, op, "result") if op.status == "COMPLETED" and op.object_count else None
    ),
    "partialDataUrl": lambda op, ctx, a: (
        _url(ctx, op, "partial") if op.status == "FAILED" and op.body else None
    ),
    "query": lambda op, ctx, a: op.query,
    "type": lambda op, ctx, a: op.type,
}
