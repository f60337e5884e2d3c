"""Calculated query cost, connection size rules and the leaky bucket (notes §6, §9.3-4).

Cost per field: scalar/enum 0, object 1, connection `2 + first × (cost of one node)`, a list field
with `first` that many times its object, and a mutation field 10 (its payload is not charged). The
requested cost uses `first`/`last`; the actual cost replays the same walk over the returned data, so
a short last page is refunded. The bucket is keyed by (token, shop) and its clock is injectable so
tests never sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)
from graphql.execution.values import get_argument_values

from simulators.harness import Limits, TokenBucket

MAX_QUERY_COST = 1000
MAX_PAGE = 250
MUTATION_COST = 10

# plan -> (restore rate points/s, bucket size). Rates from the docs; buckets at 20 s of restore [infer],
# matching the 2,000/100 pair Shopify reports for Standard.
PLANS: dict[str, tuple[float, float]] = {
    "standard": (100.0, 2000.0),
    "advanced": (200.0, 4000.0),
    "plus": (1000.0, 20000.0),
    "enterprise": (2000.0, 40000.0),
}


def is_connection(type_name: str) -> bool:
    return type_name.endswith("Connection")


@dataclass
class Walk:
    """What a walk needs: the schema, fragments by name and the coerced variables."""

    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]

    def fields(self, selection_set: SelectionSetNode | None) -> Iterator[FieldNode]:
        """Every field of a selection set with fragments flattened (type conditions ignored:
        charging every branch is the conservative reading)."""
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from self.fields(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in self.fragments:
                yield from self.fields(self.fragments[selection.name.value].selection_set)

    def field_def(self, parent: Any, node: FieldNode) -> tuple[Any, dict[str, Any]] | None:
        definition = getattr(parent, "fields", {}).get(node.name.value)
        if definition is None:  # __typename and friends
            return None
        return definition, get_argument_values(definition, node, self.variables)

    def typed_fields(
        self, parent: Any, selection_set: SelectionSetNode | None
    ) -> Iterator[tuple[FieldNode, Any, dict[str, Any], Any]]:
        """(field node, definition, coerced args, named return type) for each schema field selected."""
        for node in self.fields(selection_set):
            resolved = self.field_def(parent, node)
            if resolved is not None:
                yield node, resolved[0], resolved[1], get_named_type(resolved[0].type)

    def root_type(self, operation: OperationDefinitionNode) -> GraphQLObjectType:
        if operation.operation == OperationType.MUTATION:
            assert self.schema.mutation_type is not None
            return self.schema.mutation_type
        assert self.schema.query_type is not None
        return self.schema.query_type


def requested_cost(walk: Walk, operation: OperationDefinitionNode) -> int:
    root = walk.root_type(operation)
    if operation.operation == OperationType.MUTATION:
        return MUTATION_COST * sum(1 for _ in walk.fields(operation.selection_set))
    return _selection_cost(walk, root, operation.selection_set, None)


def actual_cost(walk: Walk, operation: OperationDefinitionNode, data: dict[str, Any] | None) -> int:
    if operation.operation == OperationType.MUTATION:
        return requested_cost(walk, operation)
    return _selection_cost(walk, walk.root_type(operation), operation.selection_set, data or {})


def _selection_cost(walk: Walk, parent: Any, selection_set: SelectionSetNode | None, data: Any) -> int:
    """Cost of a selection on `parent`; `data` is None for the requested cost, else the result."""
    total = 0
    for node, definition, args, named in walk.typed_fields(parent, selection_set):
        if is_leaf_type(named):
            continue
        key = node.alias.value if node.alias else node.name.value
        value = None if data is None else (data.get(key) if isinstance(data, dict) else None)
        if data is not None and value is None:
            continue
        if is_connection(named.name):
            total += 2 + _connection_nodes_cost(walk, named, node, args, value)
        elif _is_list(definition.type):
            count = args.get("first") or 1
            items = value if data is not None else [None] * count
            total += sum(1 + _selection_cost(walk, named, node.selection_set, item) for item in items or [])
        else:
            total += 1 + _selection_cost(walk, named, node.selection_set, value)
    return total


def _is_list(type_: Any) -> bool:
    return is_list_type(type_.of_type if is_non_null_type(type_) else type_)


def _connection_nodes_cost(
    walk: Walk, connection: Any, node: FieldNode, args: dict[str, Any], value: Any
) -> int:
    """`first × one node` when requesting; the sum over returned nodes when measuring."""
    total = 0
    for part in walk.fields(node.selection_set):
        if part.name.value == "nodes":
            node_type = get_named_type(connection.fields["nodes"].type)
            selections = [(part.selection_set, item) for item in _returned(value, part, "nodes")]
        elif part.name.value == "edges":
            edge_type = get_named_type(connection.fields["edges"].type)
            node_type = get_named_type(edge_type.fields["node"].type)
            inner = [f for f in walk.fields(part.selection_set) if f.name.value == "node"]
            edges = _returned(value, part, "edges")
            selections = [
                (f.selection_set, (edge or {}).get(f.alias.value if f.alias else "node") if value else None)
                for f in inner
                for edge in edges
            ]
        else:
            continue
        if value is None:
            size = args.get("first") or args.get("last") or 1
            total += size * sum(1 + _selection_cost(walk, node_type, sel, None) for sel, _ in selections)
        else:
            total += sum(1 + _selection_cost(walk, node_type, sel, item) for sel, item in selections)
    return total


def _returned(value: Any, part: FieldNode, default: str) -> list[Any]:
    if value is None:
        return [None]
    return list(value.get(part.alias.value if part.alias else default) or [])


MAX_INPUT_ARRAY = 250


def _longest_list(value: Any) -> int:
    if isinstance(value, list):
        return max([len(value), *(_longest_list(v) for v in value)])
    if isinstance(value, dict):
        return max([0, *(_longest_list(v) for v in value.values())])
    return 0


def argument_errors(walk: Walk, operation: OperationDefinitionNode, bulk: bool) -> list[GraphQLError]:
    """Connections need `first` or `last` (not both) and at most 250, except inside bulk queries;
    input arrays hold at most 250 items."""
    errors: list[GraphQLError] = []

    def visit(parent: Any, selection_set: SelectionSetNode | None, path: list[str]) -> None:
        for node, _, args, named in walk.typed_fields(parent, selection_set):
            here = [*path, node.alias.value if node.alias else node.name.value]
            errors.extend(_field_argument_errors(node, named, args, here, bulk))
            if not is_leaf_type(named):
                visit(named, node.selection_set, here)

    visit(walk.root_type(operation), operation.selection_set, [])
    return errors


def _field_argument_errors(
    node: FieldNode, named: Any, args: dict[str, Any], path: list[str], bulk: bool
) -> list[GraphQLError]:
    found: list[tuple[str, str]] = []
    first, last = args.get("first"), args.get("last")
    if is_connection(named.name) and not bulk:
        if first is None and last is None:
            found.append(("you must provide one of first or last", "BAD_REQUEST"))
        elif first is not None and last is not None:
            found.append(("passing both first and last is not supported", "BAD_REQUEST"))
    for name, size in (("first", first), ("last", last)):
        if size is not None and not 0 <= size <= MAX_PAGE:
            message = f"Argument '{name}' on Field '{node.name.value}' must be between 0 and {MAX_PAGE}."
            found.append((message, "BAD_REQUEST"))
    longest = _longest_list(args)
    if longest > MAX_INPUT_ARRAY:
        message = (
            f"The input array size of {longest} is greater than the maximum allowed of {MAX_INPUT_ARRAY}."
        )
        found.append((message, "MAX_INPUT_SIZE_EXCEEDED"))
    return [GraphQLError(message, node, path=path, extensions={"code": code}) for message, code in found]


class CostBucket:
    """One leaky bucket per (token, shop): reserve the requested cost, refund down to the actual."""

    def __init__(self, plan: str, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        if plan not in PLANS:
            raise ValueError(f"unknown Shopify plan {plan!r}; choose one of {sorted(PLANS)}")
        rate, size = PLANS[plan]
        self.enabled = limits.enabled
        self.restore_rate = rate * limits.scale
        self.maximum = size * limits.scale
        self._bucket = TokenBucket(self.restore_rate, self.maximum, clock)

    def reserve(self, key: Any, cost: int) -> bool:
        if not self.enabled:
            return True
        taken, _ = self._bucket.take(cost, key)
        return taken

    def refund(self, key: Any, amount: int) -> None:
        if self.enabled and amount > 0:
            self._bucket.give_back(amount, key)

    def status(self, key: Any) -> dict[str, float]:
        available = self._bucket.available(key) if self.enabled else self.maximum
        return {
            "maximumAvailable": self.maximum,
            "currentlyAvailable": round(available, 1),
            "restoreRate": self.restore_rate,
        }
