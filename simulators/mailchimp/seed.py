"""Seed a Mailchimp account from a synthetic shop, using only what Mailchimp would know: the people
on the mailchimp platform (one audience), the campaigns sent from it with their email events, and
the store's customers and orders for those people."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import timedelta

from simulators.dataset import Order, ShopData
from simulators.mailchimp.ecommerce import Store, customer_id
from simulators.mailchimp.members_state import Audience, Clock, Member, subscriber_hash
from simulators.mailchimp.reports import Reports, SentCampaign

STATUS_BY_CONSENT = {
    "subscribed": "subscribed",
    "unsubscribed": "unsubscribed",
    "never_subscribed": "transactional",
}


def short_id(text: str) -> str:
    """A stable 10-hex id like Mailchimp's list and campaign ids."""
    return hashlib.md5(text.encode()).hexdigest()[:10]


def seed_audience(shop: ShopData, clock: Clock) -> Audience:
    audience = Audience(
        list_id=short_id(f"list:{shop.name}:{shop.seed}"), name=shop.name, created=shop.as_of, clock=clock
    )
    people = sorted(shop.people_on("mailchimp"), key=lambda p: p.person_id)
    if people:
        audience.created = min(p.created_at for p in people)
    for seq, person in enumerate(people):
        audience.add_member(
            Member(
                id=subscriber_hash(person.email),
                email=person.email,
                status=STATUS_BY_CONSENT[person.email_consent],
                merge_fields={
                    "FNAME": person.first_name,
                    "LNAME": person.last_name,
                    "ADDRESS": "",
                    "PHONE": "",
                },
                timestamp_signup=person.created_at,
                timestamp_opt=person.created_at,
                last_changed=person.updated_at,
                seq=seq,
                country_code=person.country,
                timezone=person.timezone,
            )
        )
    return audience


def seed_reports(shop: ShopData, audience: Audience) -> Reports:
    reports = Reports()
    ids = {}
    for index, campaign in enumerate(sorted(shop.campaigns_on("mailchimp"), key=lambda c: c.sent_at)):
        ids[campaign.campaign_id] = short_id(f"campaign:{campaign.campaign_id}")
        reports.add_campaign(
            SentCampaign(
                id=ids[campaign.campaign_id],
                web_id=200000 + index,
                title=campaign.name,
                send_time=campaign.sent_at.replace(microsecond=0),
                create_time=(campaign.sent_at - timedelta(days=1)).replace(microsecond=0),
            )
        )
    member_of = {p.person_id: subscriber_hash(p.email) for p in shop.people_on("mailchimp")}
    received: dict[str, int] = defaultdict(int)
    engaged: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in sorted(shop.events, key=lambda e: e.occurred_at):
        member_id = member_of.get(event.person_id)
        if member_id is None or event.campaign_id not in ids:
            continue
        reports.add_event(ids[event.campaign_id], member_id, event.kind, event.occurred_at, event.url)
        if event.kind == "received":
            received[member_id] += 1
        elif event.kind in ("opened", "clicked"):
            engaged[(member_id, event.kind)].add(event.campaign_id)
    for member_id, sent in received.items():
        member = audience.members[member_id]
        member.avg_open_rate = round(len(engaged[(member_id, "opened")]) / sent, 4)
        member.avg_click_rate = round(len(engaged[(member_id, "clicked")]) / sent, 4)
        member.member_rating = 1 + min(4, round(member.avg_open_rate * 4 + member.avg_click_rate * 4))
    return reports


def seed_store(shop: ShopData, audience: Audience) -> Store:
    store = Store(
        id=short_id(f"store:{shop.name}"),
        list_id=audience.list_id,
        name=shop.name,
        currency=shop.currency,
        created=audience.created,
    )
    orders_of: dict[int, list[Order]] = defaultdict(list)
    for order in shop.orders:
        orders_of[order.person_id].append(order)
    titles = {p.product_id: p.title for p in shop.products}
    people = sorted(
        (p for p in shop.people_on("mailchimp") if orders_of[p.person_id]), key=lambda p: p.person_id
    )
    for person in people:
        store.add_customer(person, orders_of[person.person_id])
    for order in sorted((o for p in people for o in orders_of[p.person_id]), key=lambda o: o.ordered_at):
        store.add_order(order, customer_id(shop.person(order.person_id)), titles)
    return store
