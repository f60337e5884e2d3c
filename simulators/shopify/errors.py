"""Shopify's error shapes: HTTP-level string errors, and GraphQL `errors` entries with codes and paths.

HTTP-level failures (401, 402, 423, 5xx, ...) carry `{"errors": "<string>"}`. Everything GraphQL
(validation, access, cost, throttling) is HTTP 200 with an `errors` list whose entries have
`message`, `locations`, `path` and `extensions.code`, using graphql-ruby's validation codes.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from starlette.responses import JSONResponse, Response

HTTP_MESSAGES = {
    400: "Bad Request",
    401: "[API] Invalid API key or access token (unrecognized login or wrong password)",
    402: "Unavailable Shop",
    403: "[API] This action requires merchant approval for the requested scope.",
    404: "Not Found",
    423: "This shop is unavailable",
    429: "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
THROTTLE_DOCS = "https://shopify.dev/api/usage/limits#rate-limits"

# graphql-core validation rule -> graphql-ruby's extensions.code, which is what Shopify sends.
RULE_CODES = {
    "FieldsOnCorrectTypeRule": "undefinedField",
    "KnownArgumentNamesRule": "argumentNotAccepted",
    "ProvidedRequiredArgumentsRule": "missingRequiredArguments",
    "ValuesOfCorrectTypeRule": "argumentLiteralsIncompatible",
    "VariablesInAllowedPositionRule": "variableMismatch",
    "KnownTypeNamesRule": "undefinedType",
    "NoUnusedVariablesRule": "variableNotUsed",
    "NoUndefinedVariablesRule": "variableNotDefined",
    "ScalarLeafsRule": "selectionMismatch",
    "KnownFragmentNamesRule": "undefinedFragment",
    "UniqueArgumentNamesRule": "argumentNotUnique",
}
_UNDEFINED_FIELD = re.compile(r"^Cannot query field '(?P<field>\w+)' on type '(?P<type>\w+)'\.")


def render_http_error(status: int, code: str = "", detail: str = "") -> Response:
    """The harness's error renderer: Shopify's string-valued `errors` at the HTTP level."""
    return JSONResponse({"errors": HTTP_MESSAGES.get(status, detail or "Error")}, status_code=status)


def error(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code, **extensions}}


def internal_error() -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    message = f"Internal error. Looks like something went wrong on our end.\nRequest ID: {request_id}"
    return error(message, "INTERNAL_SERVER_ERROR", requestId=request_id)


def throttled() -> dict[str, Any]:
    return error("Throttled", "THROTTLED", documentation=THROTTLE_DOCS)


def max_cost_exceeded(cost: int, limit: int) -> dict[str, Any]:
    message = (
        f"Query cost is {cost}, which exceeds the single query max cost limit ({limit}).\n\n"
        "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
        "cost of a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk "
        "operations should be used instead.\nSee https://shopify.dev/tutorials/perform-bulk-operations-"
        "with-admin-api for usage details.\n"
    )
    return error(message, "MAX_COST_EXCEEDED", cost=cost, maxCost=limit)


def node_paths(document: DocumentNode) -> dict[int, list[str]]:
    """graphql-ruby style paths (["query Name", "customers", "nodes", "foo"]) for every field and
    argument node, keyed by id(node), so validation errors can say where they are."""
    paths: dict[int, list[str]] = {}

    def visit(selection_set: SelectionSetNode | None, path: list[str]) -> None:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                here = [*path, (selection.alias or selection.name).value]
                paths[id(selection)] = here
                for argument in selection.arguments or ():
                    paths[id(argument)] = [*here, argument.name.value]
                    paths[id(argument.value)] = [*here, argument.name.value]
                visit(selection.selection_set, here)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition.name.value if selection.type_condition else ""
                visit(selection.selection_set, [*path, f"... on {condition}"])

    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            label = definition.operation.value
            label = f"{label} {definition.name.value}" if definition.name else label
        elif isinstance(definition, FragmentDefinitionNode):
            label = f"fragment {definition.name.value}"
        else:
            continue
        paths[id(definition)] = [label]
        visit(definition.selection_set, [label])
    return paths


def format_error(err: GraphQLError, code: str, paths: dict[int, list[str]]) -> dict[str, Any]:
    """One `errors` entry in Shopify's shape from a graphql-core error."""
    message, extensions = err.message, {"code": code, **(err.extensions or {})}
    match = _UNDEFINED_FIELD.match(message)
    if code == "undefinedField" and match:
        message = f"Field '{match['field']}' doesn't exist on type '{match['type']}'"
        extensions.update(typeName=match["type"], fieldName=match["field"])
    entry: dict[str, Any] = {"message": message}
    if err.locations:
        entry["locations"] = [{"line": loc.line, "column": loc.column} for loc in err.locations]
    node = (err.nodes or [None])[0]
    path = err.path or (paths.get(id(node), []) if node is not None else [])
    if isinstance(node, ArgumentNode) and not path:
        path = [node.name.value]
    entry["path"] = list(path)
    entry["extensions"] = extensions
    return entry
