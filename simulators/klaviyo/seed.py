"""Seed the simulator from a `ShopData`, keeping only what a Klaviyo account would know.

Profiles: people on the klaviyo platform. Metrics: Klaviyo's own email metrics, the Shopify integration's
`Placed Order` / `Ordered Product`, and a second `Placed Order` sent through the API (metric names repeat
across integrations on real accounts; a client that picks by name alone gets the wrong one). Events:
email events of campaigns sent from Klaviyo, and the orders of Klaviyo people as Shopify events.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from simulators.dataset import Campaign, EmailEvent, Order, OrderLine, Person, ShopData
from simulators.klaviyo.records import (
    API,
    KLAVIYO,
    SHOPIFY,
    Event,
    Integration,
    Metric,
    Profile,
    base62_id,
    event_uuid,
    iso,
    ulid,
)

EMAIL_METRICS = {
    "received": "Received Email",
    "opened": "Opened Email",
    "clicked": "Clicked Email",
    "bounced": "Bounced Email",
    "unsubscribed": "Unsubscribed from Email Marketing",
}
API_ORDER_EVERY = 10  # every 10th order is also sent to the API "Placed Order" metric

_CONSENT = {
    "subscribed": "SUBSCRIBED",
    "unsubscribed": "UNSUBSCRIBED",
    "never_subscribed": "NEVER_SUBSCRIBED",
}


@dataclass
class Seeded:
    profiles: list[Profile]
    metrics: list[Metric]
    events: list[Event]


def _subscriptions(person: Person) -> dict[str, Any]:
    suppressed = person.email_consent == "unsubscribed"
    marketing: dict[str, Any] = {
        "can_receive_email_marketing": not suppressed,
        "consent": _CONSENT[person.email_consent],
        "consent_timestamp": iso(person.created_at) if person.email_consent == "subscribed" else None,
        "last_updated": iso(person.updated_at),
        "method": "API" if person.email_consent != "never_subscribed" else None,
        "method_detail": "",
        "double_optin": None,
        "suppression": [{"reason": "USER_SUPPRESSED", "timestamp": iso(person.updated_at)}]
        if suppressed
        else [],
        "list_suppressions": [],
    }
    return {"email": {"marketing": marketing}}


def _predictive(orders: list[Order]) -> dict[str, Any]:
    """Historic figures Klaviyo derives from orders; the predictions themselves stay null (Klaviyo only fills
    them for accounts that meet its data thresholds, and clients must accept null)."""
    kept = sorted((o for o in orders if o.cancelled_at is None), key=lambda o: o.ordered_at)
    total = round(sum(o.total for o in kept), 2)
    gaps = [(b.ordered_at - a.ordered_at).days for a, b in itertools.pairwise(kept)]
    return {
        "historic_clv": total,
        "predicted_clv": None,
        "total_clv": None,
        "historic_number_of_orders": len(kept),
        "predicted_number_of_orders": None,
        "average_days_between_orders": round(sum(gaps) / len(gaps), 1) if gaps else None,
        "average_order_value": round(total / len(kept), 2) if kept else None,
        "churn_probability": None,
        "expected_date_of_next_order": None,
        "ranked_channel_affinity": ["email"],
    }


def _profile(person: Person, profile_id: str, orders: list[Order]) -> Profile:
    strings = {
        "email": person.email.strip().lower(),
        "first_name": person.first_name,
        "last_name": person.last_name,
    }
    return Profile(
        id=profile_id,
        created=person.created_at,
        updated=person.updated_at,
        strings=strings,
        location={"country": person.country, "timezone": person.timezone},
        subscriptions=_subscriptions(person),
        predictive=_predictive(orders),
    )


def _email_properties(source: tuple[EmailEvent, Campaign]) -> dict[str, Any]:
    event, campaign = source
    props: dict[str, Any] = {
        "Campaign Name": campaign.name,
        "Subject": campaign.name,
        "$message": campaign.campaign_id,
        "$event_id": event.event_id,
    }
    if event.url:
        props["URL"] = event.url
    return props


def _order_properties(order: Order) -> dict[str, Any]:
    return {
        "$value": order.total,
        "$event_id": order.order_id,
        "$currency_code": order.currency,
        "Total Discounts": order.discount_total,
        "Discount Codes": [order.discount_code] if order.discount_code else [],
        "Items": [_line_properties((order, line)) for line in order.lines],
        "Categories": sorted({line.category for line in order.lines}),
        "ItemNames": [line.product_id for line in order.lines],
    }


def _line_properties(source: tuple[Order, OrderLine]) -> dict[str, Any]:
    order, line = source
    return {
        "$value": round(line.unit_price * line.quantity - line.discount, 2),
        "$event_id": f"{order.order_id}:{line.line_id}",
        "OrderId": order.order_id,
        "ProductID": line.product_id,
        "Quantity": line.quantity,
        "ItemPrice": line.unit_price,
        "Discount": line.discount,
        "Categories": [line.category],
    }


def _api_order_properties(order: Order) -> dict[str, Any]:
    return {"$value": order.total, "OrderId": order.order_id, "Source": "custom checkout"}


class _Ids:
    """Hands out event ids and uuids in seeding order, so the same shop always gives the same ids."""

    def __init__(self, salt: int) -> None:
        self.salt = salt
        self.count = 0

    def event(self, metric: Metric, profile_id: str, moment: datetime, source: Any, build: Any) -> Event:
        self.count += 1
        return Event(
            id=base62_id(self.salt, self.count, 11),
            metric_id=metric.id,
            profile_id=profile_id,
            datetime=moment.replace(microsecond=0),
            uuid=event_uuid(self.salt, self.count),
            source=source,
            build=build,
        )


def _metric(name: str, integration: Integration, salt: int, created: datetime) -> Metric:
    number = sum(ord(c) for c in name + integration.id) * 131 + len(name)
    return Metric(base62_id(salt, number, 6), name, integration, created, created)


def seed(shop: ShopData, salt: int) -> Seeded:
    people = list(shop.people_on("klaviyo"))
    profile_ids = {p.person_id: ulid(salt, i + 1) for i, p in enumerate(people)}
    orders_by_person: dict[int, list[Order]] = defaultdict(list)
    for order in shop.orders:
        if order.person_id in profile_ids:
            orders_by_person[order.person_id].append(order)
    first = min((p.created_at for p in people), default=shop.as_of) - timedelta(days=30)
    metrics = {name: _metric(name, KLAVIYO, salt, first) for name in EMAIL_METRICS.values()}
    metrics["Placed Order"] = _metric("Placed Order", SHOPIFY, salt, first)
    metrics["Ordered Product"] = _metric("Ordered Product", SHOPIFY, salt, first)
    api_placed = _metric("Placed Order", API, salt, first + timedelta(days=400))
    ids = _Ids(salt)
    events = list(_email_events(shop, profile_ids, metrics, ids))
    events += _order_events(orders_by_person, profile_ids, metrics, api_placed, ids)
    profiles = [_profile(p, profile_ids[p.person_id], orders_by_person[p.person_id]) for p in people]
    return Seeded(profiles, [*metrics.values(), api_placed], events)


def _email_events(
    shop: ShopData, profile_ids: dict[int, str], metrics: dict[str, Metric], ids: _Ids
) -> Iterator[Event]:
    campaigns = {c.campaign_id: c for c in shop.campaigns_on("klaviyo")}
    for email_event in shop.events:
        campaign = campaigns.get(email_event.campaign_id)
        profile_id = profile_ids.get(email_event.person_id)
        if campaign is None or profile_id is None:
            continue
        metric = metrics[EMAIL_METRICS[email_event.kind]]
        yield ids.event(
            metric, profile_id, email_event.occurred_at, (email_event, campaign), _email_properties
        )


def _order_events(
    orders_by_person: dict[int, list[Order]],
    profile_ids: dict[int, str],
    metrics: dict[str, Metric],
    api_placed: Metric,
    ids: _Ids,
) -> list[Event]:
    events: list[Event] = []
    for person_id, orders in orders_by_person.items():
        profile_id = profile_ids[person_id]
        for number, order in enumerate(orders):
            moment = order.ordered_at
            events.append(ids.event(metrics["Placed Order"], profile_id, moment, order, _order_properties))
            for line in order.lines:
                line_source = (order, line)
                events.append(
                    ids.event(metrics["Ordered Product"], profile_id, moment, line_source, _line_properties)
                )
            if number % API_ORDER_EVERY == 0 and person_id % 3 == 0:
                events.append(ids.event(api_placed, profile_id, moment, order, _api_order_properties))
    return events
