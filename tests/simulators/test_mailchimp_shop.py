"""Helpers the Mailchimp simulator tests share (a seeded tiny shop, a ticking clock, a running
server with an authenticated client) and the tests that seeding serves only what Mailchimp knows."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import httpx

from simulators.dataset import ShopData
from simulators.harness import Simulator
from simulators.mailchimp import build
from simulators.mailchimp.members_state import subscriber_hash
from simulators.shops import generate

AS_OF = datetime(2026, 1, 1, tzinfo=UTC)


@cache
def tiny_shop() -> ShopData:
    return generate("tiny", seed=11, as_of=AS_OF)


class TickingClock:
    """Advances one second per reading, so every write gets a distinct `last_changed`."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.now += timedelta(seconds=1)
            return self.now


@dataclass
class Running:
    sim: Simulator
    url: str
    client: httpx.Client

    @property
    def list_id(self) -> str:
        return self.sim.state.audience.list_id

    def members_path(self, key: str = "") -> str:
        return f"/lists/{self.list_id}/members" + (f"/{key}" if key else "")


@contextmanager
def running(**options: Any) -> Iterator[Running]:
    """A served simulator of the tiny shop and a client authenticated as the default key."""
    options.setdefault("clock", TickingClock(AS_OF + timedelta(days=1)))
    sim = build(tiny_shop(), **options)
    server = sim.serve()
    client = httpx.Client(
        base_url=server.url + sim.base_path, auth=("espd", sim.credentials["api_key"]), timeout=10
    )
    try:
        yield Running(sim, server.url, client)
    finally:
        client.close()
        server.stop()


def test_audience_holds_only_the_people_on_mailchimp_with_consent_as_status() -> None:
    shop = tiny_shop()
    sim = build(shop)
    audience = sim.state.audience
    on_mailchimp = list(shop.people_on("mailchimp"))
    assert 0 < len(on_mailchimp) < len(shop.people)
    assert set(audience.members) == {subscriber_hash(p.email) for p in on_mailchimp}
    expected = {
        "subscribed": "subscribed",
        "unsubscribed": "unsubscribed",
        "never_subscribed": "transactional",
    }
    for person in on_mailchimp:
        member = audience.members[subscriber_hash(person.email)]
        assert member.status == expected[person.email_consent]
        assert member.merge_fields["FNAME"] == person.first_name
        assert member.last_changed == person.updated_at.replace(microsecond=0)
    assert {"FNAME", "LNAME", "ADDRESS", "PHONE", "BIRTHDAY"} <= set(audience.merge_fields)


def test_campaigns_events_and_orders_come_only_from_mailchimp() -> None:
    shop = tiny_shop()
    sim = build(shop)
    state = sim.state
    assert len(state.reports.campaigns) == len(list(shop.campaigns_on("mailchimp")))
    on_mailchimp = {p.person_id for p in shop.people_on("mailchimp")}
    expected_orders = {o.order_id for o in shop.orders if o.person_id in on_mailchimp}
    assert {o["id"] for o in state.store.orders} == expected_orders
    emails = {p.email for p in shop.people_on("mailchimp")}
    assert all(c["email_address"] in emails for c in state.store.customers.values())
    recipients = {m for c in state.reports.campaigns.values() for m in c.recipients}
    assert recipients and recipients <= set(state.audience.members)


def test_unknown_build_option_is_refused() -> None:
    try:
        build(tiny_shop(), data_center="us1")
    except TypeError as exc:
        assert "data_center" in str(exc)
    else:
        raise AssertionError("an unknown option must not be ignored")
