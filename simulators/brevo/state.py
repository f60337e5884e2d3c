"""Everything one simulated Brevo account holds, seeded from what Brevo would know of a shop.

Seeding uses only `shop.people_on("brevo")`, the shop's Brevo campaigns, and the orders and email
events of those people. Tests read back and mutate through the helper methods (`contact_by_email`,
`touch`, `delete_contact`, `add_email_event`); every access holds `lock`, because uvicorn serves
from its own thread while tests mutate from theirs.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from simulators.brevo.attributes import Attribute
from simulators.brevo.contacts import Contact, ContactStore
from simulators.brevo.engagement import CampaignRecord, StatEvent
from simulators.brevo.times import format_time, truncate_ms
from simulators.dataset import EmailEventKind, Order, ShopData

NEWSLETTER_LIST = 2
CUSTOMERS_LIST = 3
DEFAULT_ATTRIBUTES = (
    Attribute("FIRSTNAME", "normal", "text"),
    Attribute("LASTNAME", "normal", "text"),
    Attribute("SMS", "normal", "text"),
)


@dataclass(slots=True)
class OrderRecord:
    order: Order
    contact_id: int
    email: str


@dataclass(slots=True)
class Process:
    """An import process: its rows are applied when its clock says it is done."""

    id: int
    name: str
    created: float  # monotonic
    rows: list[dict[str, Any]] = field(default_factory=list)
    list_ids: list[int] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    notify_url: str | None = None
    applied: bool = False


class BrevoState:
    """One account: contacts, attribute definitions, lists, campaigns, orders, processes."""

    def __init__(
        self,
        *,
        now: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
        offset: timedelta = timedelta(hours=2),
        account_email: str = "owner@espd-shop.example",
    ) -> None:
        self.lock = threading.RLock()
        self.now = lambda: truncate_ms(now())
        self.monotonic = monotonic
        self.offset = offset
        self.account_email = account_email
        self.contacts = ContactStore(self.now)
        self.attributes: dict[str, Attribute] = {a.name: a for a in DEFAULT_ATTRIBUTES}
        self.lists: dict[int, str] = {NEWSLETTER_LIST: "Newsletter", CUSTOMERS_LIST: "Shop customers"}
        self.campaigns: list[CampaignRecord] = []
        self.campaign_by_id: dict[int, CampaignRecord] = {}
        self.events_by_contact: dict[int, list[StatEvent]] = defaultdict(list)
        self.orders: list[OrderRecord] = []  # creation order
        self.processes: dict[int, Process] = {}
        self.custom_events: list[dict[str, Any]] = []
        self.notifications: list[tuple[str, int, str]] = []  # (url, processId, outcome)

    def time_text(self, moment: datetime) -> str:
        return format_time(moment, self.offset)

    # -- seeding -----------------------------------------------------------------------------

    def seed(self, shop: ShopData) -> None:
        people = sorted(shop.people_on("brevo"), key=lambda p: (p.created_at, p.person_id))
        by_person: dict[int, Contact] = {}
        buyers = {o.person_id for o in shop.orders}
        for index, person in enumerate(people, start=1):
            lists = [NEWSLETTER_LIST] if person.email_consent != "never_subscribed" else []
            if person.person_id in buyers:
                lists.append(CUSTOMERS_LIST)
            contact = Contact(
                id=index,
                email=person.email,
                created_at=truncate_ms(person.created_at),
                modified_at=truncate_ms(person.updated_at),
                email_blacklisted=person.email_consent == "unsubscribed",
                list_ids=lists,
                attributes={"FIRSTNAME": person.first_name, "LASTNAME": person.last_name},
            )
            self.contacts.add(contact)
            by_person[person.person_id] = contact
        self._seed_campaigns(shop, by_person)
        self.orders = [
            OrderRecord(order, by_person[order.person_id].id, by_person[order.person_id].email or "")
            for order in sorted(shop.orders, key=lambda o: (o.ordered_at, o.order_id))
            if order.person_id in by_person
        ]

    def _seed_campaigns(self, shop: ShopData, by_person: dict[int, Contact]) -> None:
        ours = sorted(shop.campaigns_on("brevo"), key=lambda c: (c.sent_at, c.campaign_id))
        key_to_id: dict[str, int] = {}
        for index, campaign in enumerate(ours, start=1):
            record = CampaignRecord(index, campaign.name, campaign.sent_at, campaign.discount_offer)
            self.campaigns.append(record)
            self.campaign_by_id[index] = record
            key_to_id[campaign.campaign_id] = index
        for event in sorted(shop.events, key=lambda e: e.occurred_at):
            contact = by_person.get(event.person_id)
            campaign_id = key_to_id.get(event.campaign_id)
            if contact is not None and campaign_id is not None:
                self._record_event(
                    contact.id, StatEvent(campaign_id, event.kind, event.occurred_at, event.url)
                )

    def _record_event(self, contact_id: int, event: StatEvent) -> None:
        self.events_by_contact[contact_id].append(event)
        self.campaign_by_id[event.campaign_id].record(contact_id, event)

    # -- helpers for tests and benchmarks --------------------------------------------------------

    def contact_by_email(self, email: str) -> Contact:
        with self.lock:
            return self.contacts.by_id[self.contacts.by_email[email.lower()]]

    def touch(self, contact_id: int) -> None:
        """Bump a contact's `modifiedAt` as an automation or list change would."""
        with self.lock:
            self.contacts.touch(self.contacts.by_id[contact_id])

    def delete_contact(self, contact_id: int) -> None:
        with self.lock:
            self.contacts.delete(self.contacts.by_id[contact_id])

    def add_email_event(
        self, contact_id: int, campaign_id: int, kind: EmailEventKind, at: datetime, url: str | None = None
    ) -> None:
        """A late engagement event (opens and clicks are not contact modifications)."""
        with self.lock:
            self._record_event(contact_id, StatEvent(campaign_id, kind, at.astimezone(UTC), url))
