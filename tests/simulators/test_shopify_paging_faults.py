"""Paging faults on the Shopify simulator: duplicates across pages, malformed records, edits while paging."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from simulators.harness import Faults
from tests.simulators.test_shopify_support import FakeClock, Shopify, clock, gid, serve

__all__ = ["clock"]  # fixtures used by this module

PAGE = """query($after: String) { customers(first: 4, after: $after, sortKey: UPDATED_AT) {
  pageInfo { hasNextPage endCursor } nodes { id updatedAt defaultEmailAddress { emailAddress }
  amountSpent { amount } } } }"""


def pull(api: Shopify) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = api.gql(PAGE, {"after": after})["data"]["customers"]
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


@pytest.fixture
def duplicating(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, faults=Faults(duplicate_across_pages=True))


def test_duplicate_across_pages_repeats_the_last_record(duplicating: Shopify) -> None:
    ids = [n["id"] for n in pull(duplicating)]
    assert len(ids) > len(set(ids))
    assert set(ids) <= {gid(i) for i in range(1, 11)}
    assert ids[3] == ids[4]  # page 2 starts with page 1's last record


@pytest.fixture
def malformed(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, faults=Faults(malformed_every=3))


def test_malformed_every_nth_record(malformed: Shopify) -> None:
    page = malformed.gql(PAGE, {})["data"]["customers"]["nodes"]
    assert page[2]["defaultEmailAddress"]["emailAddress"] == "not-an-email"
    assert page[2]["amountSpent"]["amount"] == "nan"
    assert page[0]["defaultEmailAddress"]["emailAddress"].endswith("@example.com")


@pytest.fixture
def moving(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, faults=Faults(update_while_paging=2))


def test_records_updated_while_paging_move_to_the_end_of_an_updated_at_pull(moving: Shopify) -> None:
    moving.clock.advance(30)
    nodes = pull(moving)
    now = moving.sim.state.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    # each page touches 2 customers: a touched record sorts after the cursor, so it is seen (again) at
    # the end with its new updatedAt, and nothing is lost
    assert {n["id"] for n in nodes} == {gid(i) for i in range(1, 11)}
    assert len(nodes) > 10
    assert nodes[-1]["updatedAt"] == now
