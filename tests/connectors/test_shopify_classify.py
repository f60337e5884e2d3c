"""Every documented Shopify answer shape through the one classification function, and value rendering."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectors.http import Outcome
from connectors.shopify.api import classify
from connectors.shopify.render import RenderError, render


def _answer(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def _cost(requested: int, available: float, rate: float = 100.0) -> dict[str, Any]:
    status = {"maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": rate}
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": None, "throttleStatus": status}}


def _error(code: str, message: str = "m", **extensions: Any) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code, **extensions}}


def test_http_level_errors() -> None:
    bad_token = _answer(401, {"errors": "[API] Invalid API key or access token"})
    assert classify(bad_token).outcome is Outcome.AUTH_FAILED
    assert "Invalid API key" in classify(bad_token).message
    assert classify(_answer(402, {"errors": "Unavailable Shop"})).outcome is Outcome.FATAL
    assert "frozen" in classify(_answer(402, {"errors": "x"})).message
    assert "locked" in classify(_answer(423, {"errors": "x"})).message
    assert classify(_answer(403, {"errors": "x"})).outcome is Outcome.AUTH_FAILED
    assert classify(_answer(404, {"errors": "Not Found"})).outcome is Outcome.FATAL
    limited = classify(_answer(429, {"errors": "x"}, {"Retry-After": "2"}))
    assert (limited.outcome, limited.wait_seconds) == (Outcome.RATE_LIMITED, 2.0)
    assert classify(_answer(503, {"errors": "x"})).outcome is Outcome.RETRY
    expired = httpx.Response(403, text="<Error><Code>ExpiredToken</Code></Error>")
    assert classify(expired).outcome is Outcome.FATAL and "bulk result" in classify(expired).message


@pytest.mark.parametrize(
    ("requested", "available", "rate", "wait"), [(802, 110.0, 100.0, 7.0), (752, 700.0, 50.0, 2.0)]
)
def test_throttled_waits_for_the_missing_points(
    requested: int, available: float, rate: float, wait: float
) -> None:
    body = {"errors": [_error("THROTTLED", "Throttled")], "extensions": _cost(requested, available, rate)}
    verdict = classify(_answer(200, body))
    assert (verdict.outcome, verdict.wait_seconds) == (Outcome.RATE_LIMITED, wait)


def test_graphql_errors_in_200_answers() -> None:
    denied = _error("ACCESS_DENIED", "Access denied for customers field.", requiredAccess="`read_customers`")
    verdict = classify(_answer(200, {"errors": [denied], "data": None}))
    assert verdict.outcome is Outcome.AUTH_FAILED and "missing scope read_customers" in verdict.message
    too_big = _answer(200, {"errors": [_error("MAX_COST_EXCEEDED", cost=1200, maxCost=1000)]})
    assert classify(too_big).outcome is Outcome.FATAL and "bug" in classify(too_big).message
    internal = _answer(200, {"errors": [_error("INTERNAL_SERVER_ERROR", requestId="r")]})
    assert classify(internal).outcome is Outcome.RETRY
    invalid = {"message": "Field 'foo' doesn't exist on type 'Customer'", "path": ["query", "foo"]}
    invalid["extensions"] = {"code": "undefinedField"}
    verdict = classify(_answer(200, {"errors": [invalid]}))
    assert verdict.outcome is Outcome.FATAL and "foo" in verdict.message


def test_user_errors_search_warnings_and_empty_data() -> None:
    rejected = {
        "metafieldsSet": {"metafields": None, "userErrors": [{"code": "INVALID_VALUE", "message": "x"}]}
    }
    assert classify(_answer(200, {"data": rejected})).outcome is Outcome.RECORD_REJECTED
    retry = {
        "metafieldsSet": {"metafields": None, "userErrors": [{"code": "INTERNAL_ERROR", "message": "x"}]}
    }
    assert classify(_answer(200, {"data": retry})).outcome is Outcome.RETRY
    warning = {"data": {"customers": {}}, "extensions": {"search": [{"warnings": [{"field": "updatd_at"}]}]}}
    assert classify(_answer(200, warning)).outcome is Outcome.FATAL
    assert classify(_answer(200, {"data": None})).outcome is Outcome.RETRY
    assert classify(_answer(200, {"data": {"customers": {"nodes": []}}})).outcome is Outcome.OK
    jsonl = httpx.Response(
        200, content=b'{"id":"gid://shopify/Order/1"}\n', headers={"content-type": "application/jsonl"}
    )
    assert classify(jsonl).outcome is Outcome.OK


@pytest.mark.parametrize(
    ("type_name", "value", "expected"),
    [
        ("number_decimal", 0.1, "0.1"),
        ("number_decimal", 1e-7, "0.0000001"),
        ("number_decimal", 3, "3"),
        ("number_decimal", 12.50, "12.5"),
        ("number_integer", 4.0, "4"),
        ("date", "2026-12-24", "2026-12-24"),
        ("date", "2026-12-24T23:30:00+00:00", "2026-12-24"),
        ("boolean", False, "false"),
        ("single_line_text_field", "at_risk", "at_risk"),
        ("single_line_text_field", 0.25, "0.25"),
    ],
)
def test_values_are_rendered_as_the_metafield_type_expects(type_name: str, value: Any, expected: str) -> None:
    assert render(type_name, value, "espd_x") == expected


@pytest.mark.parametrize(
    ("type_name", "value"),
    [
        ("number_decimal", float("nan")),
        ("number_decimal", True),
        ("number_decimal", "0.5"),
        ("number_integer", 2.5),
        ("date", "24/12/2026"),
        ("boolean", "yes"),
        ("single_line_text_field", "two\nlines"),
        ("json", "{}"),
    ],
)
def test_values_that_do_not_fit_their_type_are_refused(type_name: str, value: Any) -> None:
    with pytest.raises(RenderError, match="espd_x"):
        render(type_name, value, "espd_x")
