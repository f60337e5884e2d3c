"""The shape of a synthetic shop, shared by the generator and the four vendor simulators.

The generator (`simulators.shops`) produces a `ShopData`; each simulator seeds its own state from it
and serves only what its platform would know (`ShopData.people_on(platform)`). The latent truth
(purchase rates, dropout, preferred hours, ...) lives in a separate frame that no API ever serves,
so engine tests can score predictions against it.

Times are always timezone-aware UTC. Money is a float in the shop currency.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import pandas as pd

Platform = Literal["klaviyo", "mailchimp", "brevo", "shopify"]
PLATFORMS: tuple[Platform, ...] = ("klaviyo", "mailchimp", "brevo", "shopify")
ESP_PLATFORMS: tuple[Platform, ...] = ("klaviyo", "mailchimp", "brevo")

Consent = Literal["subscribed", "unsubscribed", "never_subscribed"]
EmailEventKind = Literal["received", "opened", "clicked", "bounced", "unsubscribed"]


@dataclass(frozen=True, slots=True)
class Person:
    """One customer or prospect, the same human on every platform, linked by email."""

    person_id: int
    email: str
    first_name: str
    last_name: str
    country: str
    timezone: str
    created_at: datetime
    updated_at: datetime
    platforms: frozenset[Platform]
    email_consent: Consent


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    title: str
    category: str
    price: float
    repeat_cycle_days: int | None  # consumables have a replenishment cycle


@dataclass(frozen=True, slots=True)
class OrderLine:
    line_id: str
    product_id: str
    category: str
    quantity: int
    unit_price: float
    discount: float  # total discount on this line


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    person_id: int
    ordered_at: datetime
    updated_at: datetime
    currency: str
    total: float  # after discounts
    discount_total: float
    discount_code: str | None
    lines: tuple[OrderLine, ...]
    cancelled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Campaign:
    campaign_id: str
    platform: Platform
    name: str
    sent_at: datetime
    discount_offer: bool


@dataclass(frozen=True, slots=True)
class EmailEvent:
    event_id: str
    person_id: int
    campaign_id: str
    kind: EmailEventKind
    occurred_at: datetime
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ShopFrames:
    """The same shop as pandas frames (one row per record), for vectorized consumers.

    Columns mirror the dataclass fields; `people.platforms` is a comma-separated string, and
    `order_lines` carries its `order_id`. Times are tz-aware UTC timestamps.
    """

    people: pd.DataFrame
    products: pd.DataFrame
    orders: pd.DataFrame
    order_lines: pd.DataFrame
    campaigns: pd.DataFrame
    events: pd.DataFrame


@dataclass(slots=True)
class ShopData:
    """A whole synthetic shop held in memory (sizes up to `medium`)."""

    name: str
    seed: int
    as_of: datetime  # the shop's "now": nothing in it happens later
    currency: str
    people: list[Person]
    products: list[Product]
    orders: list[Order]
    campaigns: list[Campaign]
    events: list[EmailEvent]
    _by_id: dict[int, Person] = field(default_factory=dict, repr=False)
    _frames: ShopFrames | None = field(default=None, repr=False)

    def person(self, person_id: int) -> Person:
        if not self._by_id:
            self._by_id = {p.person_id: p for p in self.people}
        return self._by_id[person_id]

    def people_on(self, platform: Platform) -> Iterator[Person]:
        return (p for p in self.people if platform in p.platforms)

    def campaigns_on(self, platform: Platform) -> Iterator[Campaign]:
        return (c for c in self.campaigns if c.platform == platform)

    def frames(self) -> ShopFrames:
        """The shop as frames: kept from generation when available, else built from the records."""
        if self._frames is None:
            self._frames = _frames_from_records(self)
        return self._frames


def _frames_from_records(shop: ShopData) -> ShopFrames:
    people = pd.DataFrame(
        [
            {
                "person_id": p.person_id,
                "email": p.email,
                "first_name": p.first_name,
                "last_name": p.last_name,
                "country": p.country,
                "timezone": p.timezone,
                "created_at": p.created_at,
                "updated_at": p.updated_at,
                "platforms": ",".join(sorted(p.platforms)),
                "email_consent": p.email_consent,
            }
            for p in shop.people
        ]
    )
    order_fields = ("order_id", "person_id", "ordered_at", "updated_at", "currency", "total")
    orders = pd.DataFrame(
        [
            {
                **{name: getattr(o, name) for name in order_fields},
                "discount_total": o.discount_total,
                "discount_code": o.discount_code,
                "cancelled_at": o.cancelled_at,
            }
            for o in shop.orders
        ]
    )
    lines = pd.DataFrame(
        [{"order_id": o.order_id, **_record_dict(line)} for o in shop.orders for line in o.lines]
    )
    return ShopFrames(
        people=people,
        products=pd.DataFrame([_record_dict(p) for p in shop.products]),
        orders=orders,
        order_lines=lines,
        campaigns=pd.DataFrame([_record_dict(c) for c in shop.campaigns]),
        events=pd.DataFrame([_record_dict(e) for e in shop.events]),
    )


def _record_dict(record: object) -> dict[str, object]:
    return {name: getattr(record, name) for name in record.__slots__}  # type: ignore[attr-defined]
