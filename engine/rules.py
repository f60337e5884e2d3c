"""User-defined segments: named boolean expressions over computed fields and profile attributes.

    vip_at_risk: churn_risk > 0.6 and clv_365 >= 200
    eu_lapsed:   lifecycle_stage in ("lapsed", "churned") and country in ["DE", "FR"]

The expression language is the comparison subset of Python, parsed with `ast.parse(mode="eval")` and
never evaluated by Python: every node must be on a whitelist (and/or, not, comparisons incl. chains
`0.2 < churn_risk <= 0.6`, field names, number/string/bool constants, a leading minus on a number,
and `in` / `not in` a tuple or list of constants). Anything else (calls, attributes, subscripts,
lambdas, arithmetic, comprehensions) is a `RuleError`. Expressions longer than `MAX_LENGTH` are
refused before parsing, so a hostile config cannot make the parser recurse or allocate without bound.

Evaluation is vectorized over a frame (one row per customer). A comparison with a missing value is
False, so `not (churn_risk > 0.6)` includes customers with no churn score: write the condition you
mean positively when missing values matter.

Every error carries `offset` (0-based character index into the expression), `line` and `column`
(1-based, within the expression) so the config loader can report file:line:col.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_LENGTH = 2_000
MAX_LIST = 500
FIELD_KINDS = ("number", "text", "bool")

_COMPARE: dict[type[ast.cmpop], Callable[[object, object], object]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


class RuleError(ValueError):
    """A rule that cannot be parsed, refers to an unknown field, or cannot be evaluated."""

    def __init__(self, message: str, expression: str = "", offset: int = 0) -> None:
        self.message, self.expression, self.offset = message, expression, offset
        before = expression[:offset]
        self.line = before.count("\n") + 1
        self.column = offset - (before.rfind("\n") + 1) + 1
        super().__init__(f"{self.line}:{self.column}: {message}")


@dataclass(frozen=True)
class Rule:
    """A validated rule; `evaluate` gives one bool per row of a frame holding the fields."""

    name: str
    expression: str
    tree: ast.Expression
    fields: frozenset[str]

    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        missing = sorted(self.fields - set(frame.columns))
        if missing:
            raise RuleError(f"rule {self.name!r}: frame has no column(s) {missing}", self.expression)
        try:
            return _as_mask(_Evaluator(frame, self.expression).value(self.tree.body), frame.index)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, RuleError):
                raise
            raise RuleError(f"rule {self.name!r}: cannot evaluate: {exc}", self.expression) from None


def compile_rule(name: str, expression: str, fields: Mapping[str, str] | Iterable[str]) -> Rule:
    """Parse and check `expression` against the known fields (a name -> kind mapping enables type checks)."""
    if not isinstance(expression, str) or not expression.strip():
        raise RuleError(f"rule {name!r}: expression must be a non-empty string", str(expression or ""))
    if len(expression) > MAX_LENGTH:
        raise RuleError(f"rule {name!r}: expression longer than {MAX_LENGTH} characters", expression)
    kinds = dict(fields) if isinstance(fields, Mapping) else dict.fromkeys(fields, "")
    tree = _parse(expression)
    checker = _Checker(expression, kinds)
    checker.check_bool(tree.body)
    return Rule(name, expression, tree, frozenset(checker.used))


def evaluate_rules(rules: Iterable[Rule], frame: pd.DataFrame) -> pd.DataFrame:
    """One bool column per rule (named after it), same index as `frame`."""
    return pd.DataFrame({rule.name: rule.evaluate(frame) for rule in rules}, index=frame.index)


def _parse(expression: str) -> ast.Expression:
    # Newlines from YAML block scalars are layout, not syntax: wrap so they are allowed anywhere.
    try:
        tree = ast.parse(f"(\n{expression}\n)", mode="eval")
    except SyntaxError as exc:
        raise RuleError(
            f"syntax error: {exc.msg}", expression, _offset_of_syntax_error(exc, expression)
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise RuleError("expression is nested too deeply or is not valid text", expression) from None
    return tree


def _offset_of_syntax_error(exc: SyntaxError, expression: str) -> int:
    """Map the error position in the wrapped source back to the user's expression."""
    if exc.lineno is None or exc.lineno < 2:
        return 0
    lines = expression.split("\n")
    if exc.lineno - 2 >= len(lines):  # reported on the closing wrapper line: the expression ended early
        return len(expression)
    line = exc.lineno - 2
    column = max((exc.offset or 1) - 1, 0)
    return min(sum(len(x) + 1 for x in lines[:line]) + column, len(expression))


def _node_offset(node: ast.AST, expression: str) -> int:
    """Character offset of a node; ast gives line numbers (shifted by the wrapper) and UTF-8 byte columns."""
    lines = expression.split("\n")
    line = min(max(getattr(node, "lineno", 2) - 2, 0), len(lines) - 1)
    column = len(lines[line].encode()[: getattr(node, "col_offset", 0)].decode(errors="ignore"))
    return sum(len(x) + 1 for x in lines[:line]) + column


class _Checker:
    """Walks the tree once at load time: whitelist, known names, and kinds where known."""

    def __init__(self, expression: str, kinds: dict[str, str]) -> None:
        self.expression, self.kinds, self.used = expression, kinds, set[str]()

    def fail(self, node: ast.AST, message: str) -> RuleError:
        return RuleError(message, self.expression, _node_offset(node, self.expression))

    def check_bool(self, node: ast.AST) -> None:
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self.check_bool(value)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.check_bool(node.operand)
        elif isinstance(node, ast.Compare):
            self.check_compare(node)
        elif not self.is_flag(node):
            raise self.fail(node, f"expected a condition, got {self.describe(node)}")

    def is_flag(self, node: ast.AST) -> bool:
        """A bare true/false operand: a bool (or untyped) field, or the constants True / False."""
        if isinstance(node, ast.Name):
            return self.kind_of(node) in ("bool", "")
        return isinstance(node, ast.Constant) and isinstance(node.value, bool)

    def check_compare(self, node: ast.Compare) -> None:
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                self.check_membership(left, right)
            elif type(op) in _COMPARE:
                kinds = {self.check_operand(left), self.check_operand(right)} - {""}
                if len(kinds) > 1:
                    raise self.fail(right, f"cannot compare {' with '.join(sorted(kinds))}")
                if isinstance(op, _ORDERING) and kinds & {"text", "bool"}:
                    raise self.fail(right, f"cannot order {kinds.pop()} values with <, <=, > or >=")
            else:
                raise self.fail(node, f"operator {type(op).__name__} is not allowed")
            left = right

    def check_membership(self, left: ast.AST, right: ast.AST) -> None:
        if not isinstance(left, ast.Name):
            raise self.fail(left, "the left side of 'in' must be a field name")
        self.check_operand(left)
        if not isinstance(right, ast.Tuple | ast.List):
            raise self.fail(right, 'the right side of \'in\' must be a list of constants, e.g. ("a", "b")')
        if len(right.elts) > MAX_LIST:
            raise self.fail(right, f"a list may hold at most {MAX_LIST} values")
        for element in right.elts:
            self.check_operand(element, allow_name=False)

    def check_operand(self, node: ast.AST, allow_name: bool = True) -> str:
        """The kind of a comparison operand ("" when unknown); fails on anything but a name or constant."""
        if isinstance(node, ast.Name) and allow_name:
            return self.kind_of(node)
        if _is_signed_number(node):
            return "number"
        if isinstance(node, ast.Constant) and not isinstance(node.value, bytes) and node.value is not None:
            if isinstance(node.value, bool):
                return "bool"
            if _is_number(node.value):
                return "number"
            if isinstance(node.value, str):
                return "text"
        expected = "a field name or a constant" if allow_name else "a constant"
        raise self.fail(node, f"expected {expected}, got {self.describe(node)}")

    def kind_of(self, node: ast.Name) -> str:
        if node.id not in self.kinds:
            known = ", ".join(sorted(self.kinds)) or "(none)"
            raise self.fail(node, f"unknown field {node.id!r}; known fields: {known}")
        self.used.add(node.id)
        return self.kinds[node.id] if self.kinds[node.id] in FIELD_KINDS else ""

    @staticmethod
    def describe(node: ast.AST) -> str:
        if isinstance(node, ast.Constant):
            return f"the constant {node.value!r}"
        return {
            "Call": "a function call",
            "Attribute": "an attribute access",
            "Subscript": "a subscript",
            "Lambda": "a lambda",
            "BinOp": "arithmetic",
            "Name": "a field that is not true/false",
        }.get(type(node).__name__, f"a {type(node).__name__} expression")


def _is_signed_number(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub | ast.UAdd)
        and isinstance(node.operand, ast.Constant)
        and _is_number(node.operand.value)
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


class _Evaluator:
    """Evaluates a checked tree over a frame: names are columns, results are bool arrays or scalars."""

    def __init__(self, frame: pd.DataFrame, expression: str) -> None:
        self.frame, self.expression = frame, expression

    def value(self, node: ast.AST) -> object:
        if isinstance(node, ast.BoolOp):
            masks = [_as_mask(self.value(v), self.frame.index) for v in node.values]
            combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            return pd.Series(combine.reduce([m.to_numpy() for m in masks]), index=self.frame.index)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ~_as_mask(self.value(node.operand), self.frame.index)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name):
            return self.frame[node.id]
        return ast.literal_eval(node)

    def compare(self, node: ast.Compare) -> pd.Series:
        result = pd.Series(True, index=self.frame.index)
        left = self.value(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            try:
                if isinstance(op, ast.In | ast.NotIn):
                    hit = _as_mask(pd.Series(left).isin(ast.literal_eval(right_node)), self.frame.index)
                    part = hit & pd.Series(left).notna() if isinstance(op, ast.In) else ~hit
                    left = right_node
                else:
                    right = self.value(right_node)
                    part = _as_mask(_COMPARE[type(op)](left, right), self.frame.index)
                    left = right
            except TypeError as exc:
                offset = _node_offset(node, self.expression)
                raise RuleError(f"cannot evaluate comparison: {exc}", self.expression, offset) from None
            result &= part
        return result


def _as_mask(value: object, index: pd.Index) -> pd.Series:
    """A plain bool Series; missing values (pd.NA, NaN) count as False."""
    if isinstance(value, pd.Series):
        return value.astype("boolean").fillna(False).astype(bool).reindex(index)
    return pd.Series(bool(value), index=index)
