"""Brevo's pull streams: contacts and e-commerce orders, both by `modifiedSince` (see incremental.py).

Contacts carry consent as blacklist flags: `emailBlacklisted` means the person cannot be mailed
(unsubscribed); otherwise a contact on a marketing list (option `marketing_list_ids`; without it,
any list: Brevo mails every non-blacklisted member) is subscribed, and one on none never
subscribed. Configure the newsletter lists so a customers-only list does not read as consent.
Orders have no currency in Brevo's API: it comes from the connector's `currency` option. A
contact's vendor id is its numeric id as a string, which the push writes through
(`identifierType=contact_id`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from connectors.base import PulledRecord
from connectors.brevo.api import CONTACTS, OTHER, parse_time
from connectors.brevo.incremental import ModifiedSinceStream, StreamContext
from connectors.records import Consent, Order, OrderLine, Profile

CONTACTS_MAX_LIMIT = 1000
ORDERS_MAX_LIMIT = 100


def _id(item: Any) -> str | None:
    raw = item.get("id") if isinstance(item, dict) else None
    return str(raw) if raw is not None and str(raw) else None


def consent(item: dict[str, Any], marketing_lists: frozenset[int]) -> Consent:
    """Blacklisted: unsubscribed. Otherwise subscribed when on a marketing list: the configured
    ones, or, with none configured, any list (Brevo mails any non-blacklisted list member)."""
    if item["emailBlacklisted"]:
        return Consent.UNSUBSCRIBED
    lists = set(item.get("listIds") or ())
    on_marketing = bool(lists & marketing_lists) if marketing_lists else bool(lists)
    return Consent.SUBSCRIBED if on_marketing else Consent.NEVER_SUBSCRIBED


class ContactsStream(ModifiedSinceStream):
    name: ClassVar[str] = "contacts"
    path = "contacts"
    items_key = "contacts"
    family = CONTACTS
    vendor_id = staticmethod(_id)

    def __init__(
        self, ctx: StreamContext, *, limit: int, parallel: int, marketing_lists: frozenset[int]
    ) -> None:
        super().__init__(ctx, limit=limit, parallel=parallel)
        self.marketing_lists = marketing_lists

    def convert(self, item: dict[str, Any]) -> PulledRecord:
        vendor_id = _id(item)
        if vendor_id is None:
            raise ValueError("contact without an id")
        attributes = item.get("attributes") or {}
        return Profile(
            source=self.ctx.source,
            vendor_id=vendor_id,
            email=item.get("email") or None,
            created_at=parse_time(item["createdAt"]) if item.get("createdAt") else None,
            updated_at=parse_time(item["modifiedAt"]),
            consent=consent(item, self.marketing_lists),
            properties={k: v for k, v in attributes.items() if k not in ("EMAIL", "SMS")},
            raw=item,
        )


class OrdersStream(ModifiedSinceStream):
    name: ClassVar[str] = "orders"
    path = "orders"
    items_key = "orders"
    family = OTHER
    vendor_id = staticmethod(_id)

    def __init__(self, ctx: StreamContext, *, currency: str, parallel: int = 1) -> None:
        super().__init__(ctx, limit=ORDERS_MAX_LIMIT, parallel=parallel)
        self.currency = currency

    def convert(self, item: dict[str, Any]) -> PulledRecord:
        vendor_id = _id(item)
        if vendor_id is None:
            raise ValueError("order without an id")
        updated = parse_time(item["updatedAt"])
        coupons = item.get("coupons") or []
        contact = item.get("contact_id")
        return Order(
            source=self.ctx.source,
            vendor_id=vendor_id,
            customer_vendor_id=str(contact) if contact is not None else None,
            email=item.get("email") or None,
            ordered_at=parse_time(item["createdAt"]),
            updated_at=updated,
            currency=self.currency,
            total=float(item["amount"]),
            discount_code=str(coupons[0]) if coupons else None,
            cancelled_at=updated if item.get("status") == "cancelled" else None,
            lines=tuple(_line(vendor_id, i, p) for i, p in enumerate(item.get("products") or [])),
            raw=item,
        )


def _line(order_id: str, index: int, product: dict[str, Any]) -> OrderLine:
    """Spec examples type productId as a number, the schema as a string: accept both."""
    product_id = product.get("productId")
    return OrderLine(
        vendor_id=f"{order_id}:{index}",
        product_id=str(product_id) if product_id is not None else None,
        quantity=int(product["quantity"]),
        unit_price=float(product["price"]),
    )
