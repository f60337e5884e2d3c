"""User-defined segments: safe parsing, load-time checks with positions, vectorized evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.rules import MAX_LENGTH, RuleError, compile_rule, evaluate_rules

FIELDS = {
    "churn_risk": "number",
    "clv_365": "number",
    "country": "text",
    "lifecycle_stage": "text",
    "vip": "bool",
    "straße": "number",
}
FRAME = pd.DataFrame(
    {
        "churn_risk": [0.7, 0.2, np.nan, 0.9],
        "clv_365": [300.0, 500.0, 1000.0, 100.0],
        "country": pd.array(["DE", "US", None, "FR"], dtype="string"),
        "lifecycle_stage": ["lapsed", "new", "active", "churned"],
        "vip": [True, False, True, False],
        "straße": [1.0, 2.0, 3.0, 4.0],
    },
    index=["a", "b", "c", "d"],
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("churn_risk > 0.6 and clv_365 >= 200", [True, False, False, False]),
        ("0.1 < churn_risk <= 0.8", [True, True, False, False]),
        ('country in ("DE", "FR")', [True, False, False, True]),
        ('country not in ["DE"]', [False, True, True, True]),
        ("not (churn_risk > 0.6)", [False, True, True, False]),  # missing churn_risk is not > 0.6
        ("vip or churn_risk >= 0.9", [True, False, True, True]),
        ("churn_risk > -1 and not vip", [False, True, False, True]),
        ('lifecycle_stage == "lapsed"\n   or clv_365 > 900', [True, False, True, False]),
        ("True", [True, True, True, True]),
        ("straße >= 3", [False, False, True, True]),
    ],
)
def test_rules_evaluate_vectorized(expression: str, expected: list[bool]) -> None:
    result = compile_rule("r", expression, FIELDS).evaluate(FRAME)
    assert result.dtype == bool
    assert result.tolist() == expected
    assert list(result.index) == list(FRAME.index)


def test_evaluate_rules_gives_one_column_per_rule_and_records_the_fields_used() -> None:
    rules = [
        compile_rule("vip_at_risk", "churn_risk > 0.6 and clv_365 >= 200", FIELDS),
        compile_rule("germany", 'country == "DE"', FIELDS),
    ]
    out = evaluate_rules(rules, FRAME)
    assert list(out.columns) == ["vip_at_risk", "germany"]
    assert out["germany"].tolist() == [True, False, False, False]
    assert rules[0].fields == {"churn_risk", "clv_365"}


@pytest.mark.parametrize(
    ("expression", "message", "offset"),
    [
        ("__import__('os')", "function call", 0),
        ("churn_risk > 0.6 and __import__('os').system('true')", "function call", 21),
        ("churn_risk.real > 1", "attribute access", 0),
        ("vip and country.__class__ == 'x'", "attribute access", 8),
        ("(lambda: True)()", "function call", 0),
        ("lambda: True", "lambda", 0),
        ("churn_risk + 1 > 2", "arithmetic", 0),
        ("country[0] == 'D'", "subscript", 0),
        ("[x for x in country]", "ListComp", 0),
        ("churn_risk > 0.6 && vip", "syntax error", 18),
        ("churn_risk >", "syntax error", 12),
        ("churn_rsk > 0.6", "unknown field 'churn_rsk'; known fields: churn_risk, clv_365, country", 0),
        ("clv_365 > 1 and\n  churn > 2", "unknown field 'churn'", 18),
        ("straße > 1 and nope", "unknown field 'nope'", 15),
        ('churn_risk > "high"', "cannot compare number with text", 13),
        ('country > "DE"', "cannot order text", 10),
        ("clv_365 in churn_risk", "right side of 'in' must be a list", 11),
        ("country in (vip, 1)", "expected a constant", 12),
        ("churn_risk > 1e999", "constant inf", 13),
        ("churn_risk", "not true/false", 0),
        ("(vip := True)", "NamedExpr", 1),
        ("(" * 300 + "vip" + ")" * 300, "too many nested parentheses", 199),
        ("vip and " * 300 + "vip", f"longer than {MAX_LENGTH}", 0),
        ("", "non-empty", 0),
    ],
)
def test_hostile_and_wrong_expressions_raise_rule_error_with_position(
    expression: str, message: str, offset: int
) -> None:
    with pytest.raises(RuleError, match=None) as caught:
        compile_rule("r", expression, FIELDS)
    assert message in caught.value.message
    assert caught.value.offset == offset
    assert str(caught.value).startswith(f"{caught.value.line}:{caught.value.column}: ")


def test_line_and_column_point_into_multiline_expressions() -> None:
    with pytest.raises(RuleError) as caught:
        compile_rule("r", "clv_365 > 1 and\n  churn > 2", FIELDS)
    assert (caught.value.line, caught.value.column) == (2, 3)


def test_huge_list_and_deep_not_chains_are_refused_or_handled_without_crashing() -> None:
    with pytest.raises(RuleError, match="at most 500"):
        compile_rule("r", "clv_365 in (" + "1," * 501 + ")", FIELDS)
    deep = compile_rule("r", "not " * 400 + "vip", FIELDS)
    assert deep.evaluate(FRAME).tolist() == FRAME["vip"].tolist()


def test_evaluation_errors_are_rule_errors_too() -> None:
    rule = compile_rule("r", "churn_risk > 0.5", ["churn_risk"])  # no kinds given: no type check at load
    with pytest.raises(RuleError, match="cannot evaluate comparison"):
        rule.evaluate(pd.DataFrame({"churn_risk": ["high", "low"]}))
    with pytest.raises(RuleError, match=r"frame has no column\(s\) \['churn_risk'\]"):
        rule.evaluate(pd.DataFrame({"clv_365": [1.0]}))
