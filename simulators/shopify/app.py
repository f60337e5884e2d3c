"""The HTTP layer: `POST /admin/api/{version}/graphql.json` and the bulk result files.

Order of checks mirrors Shopify: auth (HTTP 401) and shop state (402/423) first, then parse and
validate (200 + errors), connection arguments and input sizes, the single-query cost cap
(MAX_COST_EXCEEDED), the leaky bucket (THROTTLED), and only then execution. Every 200 carries
`extensions.cost`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

from graphql import DocumentNode, GraphQLError, parse, specified_rules, validate
from graphql.execution.values import get_variable_values
from graphql.utilities import get_operation_ast
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.harness import Faults
from simulators.shopify import errors
from simulators.shopify.context import Context
from simulators.shopify.cost import (
    MAX_QUERY_COST,
    CostBucket,
    Walk,
    actual_cost,
    argument_errors,
    requested_cost,
)
from simulators.shopify.executor import run, schema
from simulators.shopify.state import ShopifyState

SUPPORTED_VERSIONS = ("2025-07", "2025-10", "2026-01", "2026-04")  # oldest first
SCHEMA_VERSION = "2026-04"


@lru_cache(maxsize=512)
def prepare(query: str) -> tuple[DocumentNode | None, tuple[dict[str, Any], ...]]:
    """Parse and validate once per distinct query text (clients repeat the same few documents)."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return None, (errors.format_error(exc, "parseError", {}),)
    if not validate(schema(), document):
        return document, ()
    paths = errors.node_paths(document)
    found = [
        errors.format_error(err, errors.RULE_CODES.get(rule.__name__, "validationError"), paths)
        for rule in specified_rules
        for err in validate(schema(), document, [rule])
    ]
    return document, tuple(found)


class GraphQLEndpoint:
    def __init__(self, state: ShopifyState, bucket: CostBucket, faults: Faults, protected_data: bool) -> None:
        self.state = state
        self.bucket = bucket
        self.faults = faults
        self.protected_data = protected_data

    async def handle(self, request: Request) -> Response:
        version = request.path_params["version"]
        headers = {
            "X-Shopify-API-Version": version if version in SUPPORTED_VERSIONS else SUPPORTED_VERSIONS[0]
        }
        token = request.headers.get("x-shopify-access-token", "")
        scopes = self.state.tokens.get(token)
        if scopes is None:
            return errors.render_http_error(401)
        if self.state.shop_status is not None:
            return errors.render_http_error(self.state.shop_status)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return errors.render_http_error(400)
        key = (token, self.state.shop_domain)
        if self.state.internal_error_burst > 0:
            self.state.internal_error_burst -= 1
            return self._reply({"errors": [errors.internal_error()]}, key, 0, None, headers)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return self._reply({"errors": [{"message": "No query string was present"}]}, key, 0, 0, headers)
        context = Context(
            self.state, scopes, self.faults, str(request.base_url).rstrip("/"), self.protected_data
        )
        return self._execute(body, context, key, headers)

    def _execute(self, body: dict[str, Any], ctx: Context, key: Any, headers: dict[str, str]) -> Response:
        document, problems = prepare(body["query"])
        if document is None or problems:
            return self._reply({"errors": list(problems)}, key, 0, 0, headers)
        operation = get_operation_ast(document, body.get("operationName"))
        if operation is None:
            message = (
                "An operation name is required" if body.get("operationName") is None else "Unknown operation"
            )
            return self._reply({"errors": [errors.error(message, "operationNotFound")]}, key, 0, 0, headers)
        raw_variables = body.get("variables") or {}
        coerced = get_variable_values(schema(), operation.variable_definitions or [], raw_variables)
        if isinstance(coerced, list):
            found = [errors.format_error(e, "variableMismatch", {}) for e in coerced]
            return self._reply({"errors": found}, key, 0, 0, headers)
        fragments = {d.name.value: d for d in document.definitions if d.kind == "fragment_definition"}
        walk = Walk(schema(), fragments, coerced)  # type: ignore[arg-type]
        bad_arguments = argument_errors(walk, operation, bulk=False)
        if bad_arguments:
            found = [errors.format_error(e, (e.extensions or {})["code"], {}) for e in bad_arguments]
            return self._reply({"errors": found}, key, 0, 0, headers)
        requested = requested_cost(walk, operation)
        if requested > MAX_QUERY_COST:
            return self._reply(
                {"errors": [errors.max_cost_exceeded(requested, MAX_QUERY_COST)]},
                key,
                requested,
                None,
                headers,
            )
        if not self.bucket.reserve(key, requested):
            return self._reply({"errors": [errors.throttled()]}, key, requested, None, headers)
        result = run(document, ctx, raw_variables, body.get("operationName"))
        actual = min(requested, actual_cost(walk, operation, result.data))
        self.bucket.refund(key, requested - actual)
        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [err.formatted for err in result.errors]
        payload["data"] = result.data
        extensions = {"search": ctx.search} if ctx.search else {}
        return self._reply(payload, key, requested, actual, headers, extensions)

    def _reply(
        self,
        payload: dict[str, Any],
        key: Any,
        requested: int,
        actual: int | None,
        headers: dict[str, str],
        extensions: dict[str, Any] | None = None,
    ) -> Response:
        cost = {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": self.bucket.status(key),
        }
        payload["extensions"] = {"cost": cost, **(extensions or {})}
        return JSONResponse(payload, headers=headers)


def bulk_results(state: ShopifyState) -> Callable[[Request], Awaitable[Response]]:
    """Serves bulk JSONL files; after the URL's expiry, the storage's 403 (like an expired signed URL)."""

    async def endpoint(request: Request) -> Response:
        op = state.bulk.get(int(request.path_params["op_id"]))
        kind = request.path_params["kind"]
        wanted_status = {"result": "COMPLETED", "partial": "FAILED"}.get(kind)
        if (
            op is None
            or op.token != request.path_params["token"]
            or op.status != wanted_status
            or op.body is None
        ):
            return Response(
                "<Error><Code>NoSuchKey</Code></Error>", status_code=404, media_type="application/xml"
            )
        if state.bulk.clock() > op.expires:
            body = (
                "<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>"
            )
            return Response(body, status_code=403, media_type="application/xml")
        return Response(op.body, media_type="application/jsonl")

    return endpoint


def create_app(state: ShopifyState, bucket: CostBucket, faults: Faults, protected_data: bool) -> Starlette:
    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"errors": errors.HTTP_MESSAGES[404]}, status_code=404)

    routes = [
        Route(
            "/admin/api/{version}/graphql.json",
            GraphQLEndpoint(state, bucket, faults, protected_data).handle,
            methods=["POST"],
        ),
        Route("/bulk-results/{op_id:int}/{kind}/{token}.jsonl", bulk_results(state), methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found})


__all__ = ["SCHEMA_VERSION", "SUPPORTED_VERSIONS", "create_app"]
