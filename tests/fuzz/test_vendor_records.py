"""Hostile vendor records mixed into pages of valid ones, through each connector's real page mapping.

Each example is one page: three valid records plus one hostile variant of a valid record (a key
dropped, a value replaced by garbage, a garbage key added, or a non-object in its place). The page
goes through the function the connector's stream applies to every page it pulls, on a connector
built from real settings (no request is made: the mapping is local). The page must never raise,
every valid record must come out, and the hostile one must come out either as a canonical record
or as a `SkippedRecord` whose reason does not quote its email.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.base import Connector, ConnectorSettings, PulledRecord, SkippedRecord
from connectors.brevo import BrevoConnector
from connectors.klaviyo import KlaviyoConnector
from connectors.mailchimp import MailchimpConnector
from connectors.mailchimp.api import convert
from connectors.mailchimp.orders import to_order
from connectors.shopify import ShopifyConnector
from connectors.shopify.streams import Run
from tests.fuzz.hostile import CHOSEN, EMAIL, hostile_variant, paths, replaced

VALID = 3
T0 = "2024-01-01T00:00:00+00:00"
T1 = "2024-06-01T12:00:00+00:00"
FUZZ = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
Mapped = tuple[Sequence[PulledRecord], Sequence[SkippedRecord]]


def _connector(kind: type[Connector], streams: tuple[str, ...], **credentials: str) -> Connector:
    return kind(
        ConnectorSettings(
            name="fuzz",
            base_url="http://127.0.0.1:9",
            credentials={k: SecretStr(v) for k, v in credentials.items()},
            streams=streams,
            lookback=timedelta(minutes=10),
            options={"api_version": "2025-07"} if kind is ShopifyConnector else {},
        )
    )


@functools.cache
def _stream(kind: type[Connector], name: str, **credentials: str) -> Any:
    connector = _connector(kind, (name,), **credentials)
    return next(s for s in connector.streams() if s.name == name)


def _email(i: int | str) -> str:
    return f"valid{i}@example.com"


# --- the valid record each vendor sends, and how a page of them is mapped -------------------------


def klaviyo_profile(i: int | str) -> dict[str, Any]:
    return {
        "type": "profile",
        "id": f"01KLAVIYO{i}",
        "attributes": {
            "email": _email(i),
            "external_id": f"ext-{i}",
            "created": T0,
            "updated": T1,
            "location": {"country": "US", "timezone": "America/New_York"},
            "properties": {"favourite": "tea", "visits": 3},
            "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}},
        },
    }


def klaviyo_profiles(items: list[Any]) -> Mapped:
    records, skipped, _ = _stream(KlaviyoConnector, "profiles", api_key="pk_fuzz").convert(items)
    return records, skipped


def klaviyo_order(i: int | str) -> dict[str, Any]:
    items = [{"ProductID": "p1", "Quantity": 2, "ItemPrice": 5.0, "Categories": ["tea"], "Discount": 0}]
    return {
        "type": "event",
        "id": f"EV{i}",
        "attributes": {
            "datetime": T1,
            "event_properties": {
                "$event_id": f"ORD{i}",
                "$value": 10.0,
                "$currency_code": "EUR",
                "Items": items,
                "Discount Codes": ["SPRING"],
                "Total Discounts": 0.0,
            },
        },
        "relationships": {"profile": {"data": {"type": "profile", "id": f"P{i}"}}},
    }


def klaviyo_opened(i: int | str) -> dict[str, Any]:
    event = klaviyo_order(i)
    event["attributes"]["event_properties"] = {"$message": "C1", "URL": "https://shop.example/x"}
    return event


def _klaviyo_events(metric: str, items: list[Any]) -> Mapped:
    profiles = [{"type": "profile", "id": f"P{i}", "attributes": {"email": _email(i)}} for i in range(VALID)]
    profiles.append({"type": "profile", "id": "PH", "attributes": {"email": EMAIL}})
    stream = _stream(KlaviyoConnector, "events", api_key="pk_fuzz")
    records, skipped, _ = stream._convert(metric, {"data": items, "included": profiles}, {})
    return records, skipped


def mailchimp_member(i: int | str) -> dict[str, Any]:
    return {
        "id": f"hash{i}",
        "email_address": _email(i),
        "status": "subscribed",
        "merge_fields": {"FNAME": "Ada"},
        "stats": {"avg_open_rate": 0.5, "avg_click_rate": 0.1},
        "member_rating": 3,
        "location": {"country_code": "US", "timezone": "America/New_York"},
        "timestamp_signup": T0,
        "last_changed": T1,
    }


def mailchimp_members(items: list[Any]) -> Mapped:
    stream = _stream(MailchimpConnector, "members", api_key="0123456789abcdef0123456789abcdef-us1")
    records, skipped, _ = stream._parse("L1", items, set())
    return records, skipped


def mailchimp_order(i: int | str) -> dict[str, Any]:
    return {
        "id": f"o{i}",
        "customer": {"id": f"c{i}", "email_address": _email(i)},
        "currency_code": "USD",
        "order_total": 10.0,
        "discount_total": 1.0,
        "processed_at_foreign": T0,
        "updated_at_foreign": T1,
        "cancelled_at_foreign": "",
        "promos": [{"code": "SPRING"}],
        "lines": [{"id": "l1", "product_id": "p1", "quantity": 1, "price": 10.0, "discount": 0}],
    }


def mailchimp_orders(items: list[Any]) -> Mapped:
    return convert("orders", items, partial(to_order, "fuzz", "S1"), "id")


def brevo_contact(i: int | str) -> dict[str, Any]:
    return {
        "id": 100 + (i if isinstance(i, int) else 50),
        "email": _email(i),
        "emailBlacklisted": False,
        "listIds": [1],
        "attributes": {"FIRSTNAME": "Ada", "EMAIL": _email(i)},
        "createdAt": "2024-01-01T00:00:00.000+00:00",
        "modifiedAt": "2024-06-01T12:00:00.000+02:00",
    }


def brevo_order(i: int | str) -> dict[str, Any]:
    return {
        "id": f"o{i}",
        "email": _email(i),
        "contact_id": 100,
        "createdAt": "2024-06-01T12:00:00Z",
        "updatedAt": "2024-06-01T12:00:00Z",
        "amount": 10.0,
        "status": "completed",
        "coupons": ["SPRING"],
        "products": [{"productId": 7, "quantity": 1, "price": 10.0}],
    }


def _brevo(name: str, items: list[Any]) -> Mapped:
    page = _stream(BrevoConnector, name, api_key="xkeysib-fuzz")._page(items, set(), {})
    return page.records, page.skipped


def shopify_customer(i: int | str) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Customer/{i}",
        "defaultEmailAddress": {"emailAddress": _email(i), "marketingState": "SUBSCRIBED"},
        "defaultAddress": {"countryCodeV2": "US"},
        "createdAt": "2024-01-01T00:00:00Z",
        "updatedAt": "2024-06-01T12:00:00Z",
    }


def shopify_order(i: int | str) -> dict[str, Any]:
    money = {"shopMoney": {"amount": "10.00", "currencyCode": "USD"}}
    line = {
        "id": f"gid://shopify/LineItem/{i}",
        "quantity": 1,
        "product": {"id": "gid://shopify/Product/1", "productType": "tea"},
        "originalUnitPriceSet": money,
        "totalDiscountSet": {"shopMoney": {"amount": "0.00"}},
    }
    return {
        "id": f"gid://shopify/Order/{i}",
        "customer": {"id": f"gid://shopify/Customer/{i}"},
        "email": _email(i),
        "processedAt": "2024-06-01T12:00:00Z",
        "createdAt": "2024-06-01T12:00:00Z",
        "updatedAt": "2024-06-01T12:00:00Z",
        "totalPriceSet": money,
        "totalDiscountsSet": {"shopMoney": {"amount": "0.00"}},
        "discountCode": "SPRING",
        "cancelledAt": None,
        "lineItems": {"nodes": [line]},
    }


def _shopify(name: str, items: list[Any]) -> Mapped:
    """What `WatermarkStream.paged` does with a page's nodes: the freshness filter, then the mapping."""
    stream = _stream(ShopifyConnector, name, access_token="shpat_fuzz")
    run = Run(None, None, frozenset())
    return asyncio.run(stream.convert([n for n in items if run.fresh(n)]))


CASES: dict[str, tuple[Callable[[int | str], dict[str, Any]], Callable[[list[Any]], Mapped]]] = {
    "klaviyo_profiles": (klaviyo_profile, klaviyo_profiles),
    "klaviyo_orders": (klaviyo_order, partial(_klaviyo_events, "Placed Order")),
    "klaviyo_opens": (klaviyo_opened, partial(_klaviyo_events, "Opened Email")),
    "mailchimp_members": (mailchimp_member, mailchimp_members),
    "mailchimp_orders": (mailchimp_order, mailchimp_orders),
    "brevo_contacts": (brevo_contact, partial(_brevo, "contacts")),
    "brevo_orders": (brevo_order, partial(_brevo, "orders")),
    "shopify_customers": (shopify_customer, partial(_shopify, "customers")),
    "shopify_orders": (shopify_order, partial(_shopify, "orders")),
}


def _hostile_template(make: Callable[[int | str], dict[str, Any]]) -> dict[str, Any]:
    """The valid record for the hostile slot, carrying the email that must never leak into a reason."""
    return _replace_strings(make("H"), _email("H"), EMAIL)


def _replace_strings(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {k: _replace_strings(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_strings(v, old, new) for v in value]
    return new if value == old else value


def _emails(records: Sequence[PulledRecord]) -> list[str | None]:
    return [r.email for r in records]


@pytest.mark.parametrize("case", sorted(CASES))
def test_valid_pages_map_completely(case: str) -> None:
    """The baseline the fuzz relies on: a page of valid records maps to one record each, none skipped."""
    make, mapped = CASES[case]
    records, skipped = mapped([make(i) for i in range(VALID)] + [_hostile_template(make)])
    assert not skipped
    assert sorted(e or "" for e in _emails(records)) == sorted(
        [*(_email(i) for i in range(VALID)), EMAIL.lower()]
    )


@pytest.mark.parametrize("case", sorted(CASES))
@FUZZ
@given(data=st.data())
def test_a_hostile_record_is_mapped_or_skipped_and_loses_nothing_else(case: str, data: st.DataObject) -> None:
    make, mapped = CASES[case]
    hostile = data.draw(hostile_variant(_hostile_template(make)), label="hostile")
    _check_page(make, mapped, hostile, data.draw(st.integers(0, VALID), label="position"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_field_replaced_by_each_chosen_hostile_value(case: str) -> None:
    """Exhaustive where the random search is thin: each field of the record, one chosen value at a time."""
    make, mapped = CASES[case]
    template = _hostile_template(make)
    for path in paths(template):
        for value in CHOSEN:
            _check_page(make, mapped, replaced(template, path, value), position=VALID)


def _check_page(
    make: Callable[[int | str], dict[str, Any]],
    mapped: Callable[[list[Any]], Mapped],
    hostile: Any,
    position: int,
) -> None:
    page = [make(i) for i in range(VALID)]
    page.insert(position, hostile)

    records, skipped = mapped(page)

    emails = _emails(records)
    for i in range(VALID):
        assert _email(i) in emails, "a valid record was lost"
    assert len(records) - VALID + len(skipped) == 1, "the hostile record must come out exactly once"
    for skip in skipped:
        assert skip.reason
        assert EMAIL.lower() not in skip.reason.lower()
        assert skip.vendor_id is None or isinstance(skip.vendor_id, str)
