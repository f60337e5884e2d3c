"""Shopify customer and order JSON -> canonical `Profile` / `Order` records.

Money comes from `shopMoney` (the shop's currency, what reports add up), as the `Decimal` strings
Shopify sends. A record that does not fit becomes a `SkippedRecord` with its GID and the reason,
never its email.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from connectors.base import SkippedRecord
from connectors.paginate import dig
from connectors.records import Consent, Order, OrderLine, Profile

CONSENT = {
    "SUBSCRIBED": Consent.SUBSCRIBED,
    "UNSUBSCRIBED": Consent.UNSUBSCRIBED,
    "INVALID": Consent.UNSUBSCRIBED,  # the address cannot be mailed
    "NOT_SUBSCRIBED": Consent.NEVER_SUBSCRIBED,
    "PENDING": Consent.NEVER_SUBSCRIBED,  # double opt-in not confirmed yet
}
BAD_RECORD = (ValidationError, ValueError, TypeError, KeyError, AttributeError, OverflowError)


def skip_reason(error: Exception) -> str:
    """A short reason without values (a validation message could quote the email)."""
    if isinstance(error, ValidationError):
        fields = sorted({".".join(str(p) for p in e["loc"]) or "record" for e in error.errors()})
        return "invalid " + ", ".join(fields)
    return f"unreadable {type(error).__name__}"


def profile(node: dict[str, Any], source: str) -> Profile:
    state = dig(node, ("defaultEmailAddress", "marketingState"))
    return Profile(
        source=source,
        vendor_id=node["id"],
        email=dig(node, ("defaultEmailAddress", "emailAddress")) or None,
        country=dig(node, ("defaultAddress", "countryCodeV2")),
        created_at=node.get("createdAt"),
        updated_at=node["updatedAt"],
        consent=CONSENT.get(state, Consent.UNKNOWN) if state else Consent.UNKNOWN,
        raw=node,
    )


def _amount(money_bag: Any) -> float:
    return float(dig(money_bag, ("shopMoney", "amount")) or 0)


def order_line(node: dict[str, Any]) -> OrderLine:
    return OrderLine(
        vendor_id=node["id"],
        product_id=dig(node, ("product", "id")),
        category=dig(node, ("product", "productType")) or None,
        quantity=int(node["quantity"]),
        unit_price=_amount(node.get("originalUnitPriceSet")),
        discount=_amount(node.get("totalDiscountSet")),
    )


def order(node: dict[str, Any], lines: Sequence[dict[str, Any]], source: str) -> Order:
    """One order; `lines` are all its line item nodes (the first page plus any fetched after)."""
    raw = {k: v for k, v in node.items() if k != "lineItems"}
    return Order(
        source=source,
        vendor_id=node["id"],
        customer_vendor_id=dig(node, ("customer", "id")),
        email=node.get("email") or None,
        ordered_at=node.get("processedAt") or node["createdAt"],
        updated_at=node["updatedAt"],
        currency=dig(node, ("totalPriceSet", "shopMoney", "currencyCode")),
        total=_amount(node.get("totalPriceSet")),
        discount_total=_amount(node.get("totalDiscountsSet")),
        discount_code=node.get("discountCode"),
        cancelled_at=node.get("cancelledAt"),
        lines=tuple(order_line(line) for line in lines),
        raw=raw,
    )


def skipped(stream: str, node: Any, error: Exception) -> SkippedRecord:
    vendor_id = node.get("id") if isinstance(node, dict) else None
    return SkippedRecord(stream, vendor_id if isinstance(vendor_id, str) else None, skip_reason(error))
