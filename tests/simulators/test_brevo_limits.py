"""Brevo simulator: per-family RPS and RPH buckets with `x-sib-ratelimit-*` headers, header-only
429s, and the harness's generic faults rendered in Brevo's error shape. A fake clock replaces
waiting on real seconds and hours."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from simulators.brevo.ratelimits import CONTACTS, RateLimiter
from simulators.harness import Faults, Limits
from tests.simulators.test_brevo_shop import Brevo, FakeClock, make_shop, running
from tests.support.spec_conformance import assert_conforms

RATE_HEADERS = ("x-sib-ratelimit-limit", "x-sib-ratelimit-remaining", "x-sib-ratelimit-reset")


@pytest.fixture
def limited() -> Iterator[Brevo]:
    yield from running(make_shop(), limits=Limits(), faults=Faults())


def test_contacts_family_allows_ten_per_second_shared_by_pull_and_push(limited: Brevo) -> None:
    statuses = [limited.get("/contacts", limit=1).status_code for _ in range(6)]
    statuses += [
        limited.send("PUT", "/contacts/1", {"attributes": {"FIRSTNAME": "x"}}).status_code for _ in range(4)
    ]
    assert statuses == [200] * 6 + [204] * 4
    blocked = limited.get("/contacts", limit=1)
    assert blocked.status_code == 429
    assert_conforms("brevo", blocked)
    assert set(blocked.json()) == {"code", "message"}
    assert "retry-after" not in blocked.headers
    assert blocked.headers["x-sib-ratelimit-remaining"] == "0"
    assert blocked.headers["x-sib-ratelimit-limit"] == "10"
    assert int(blocked.headers["x-sib-ratelimit-reset"]) >= 1
    limited.clock.advance(0.1)  # one token back at 10 per second
    assert limited.get("/contacts", limit=1).status_code == 200
    assert limited.get("/contacts", limit=1).status_code == 429


def test_headers_on_every_response_of_a_limited_family(limited: Brevo) -> None:
    first = limited.get("/contacts", limit=1)
    assert [first.headers[h] for h in RATE_HEADERS] == ["10", "9", "1"]
    write = limited.send("PUT", "/contacts/1", {"attributes": {"FIRSTNAME": "x"}})
    assert write.headers["x-sib-ratelimit-remaining"] == "8"
    error = limited.get("/contacts", limit=5000)
    assert error.status_code == 400 and error.headers["x-sib-ratelimit-remaining"] == "7"


def test_contacts_run_a_full_hour_at_ten_per_second() -> None:
    """36,000 per hour is exactly 10 per second for 3,600 s: a client pacing at 10 RPS is never
    refused, and a burst gets ten, not eleven. Driven in process
    (36,000 HTTP calls would take minutes) on the simulator's own limiter and a fake clock."""
    clock = FakeClock()
    limiter = RateLimiter(Limits(), clock)
    verdicts = []
    for _ in range(36_000):
        verdicts.append(limiter.check(CONTACTS))
        clock.advance(0.1)
    assert all(v is not None and v.allowed for v in verdicts)
    clock.advance(1)
    burst = [limiter.check(CONTACTS) for _ in range(11)]
    assert [v is not None and v.allowed for v in burst] == [True] * 10 + [False]


def test_other_endpoints_share_one_hundred_per_hour(limited: Brevo) -> None:
    paths = ["/orders", "/emailCampaigns", "/processes"]
    statuses = [limited.get(paths[i % 3], conform=False).status_code for i in range(100)]
    assert statuses == [200] * 100
    blocked = limited.get("/orders", conform=False)  # the spec lists 429 only for GET /contacts
    assert blocked.status_code == 429 and "retry-after" not in blocked.headers
    assert blocked.headers["x-sib-ratelimit-limit"] == "100"
    assert int(blocked.headers["x-sib-ratelimit-reset"]) == 36  # one request back every 36 s
    assert limited.get("/contacts", limit=1).status_code == 200  # another family is untouched
    limited.clock.advance(36)
    assert limited.get("/processes").status_code == 200


def test_events_family_and_auth_before_budget(limited: Brevo) -> None:
    event = {"event_name": "scored", "identifiers": {"email_id": "person1@shop.example"}}
    statuses = [limited.send("POST", "/events", event, conform=False).status_code for _ in range(11)]
    assert statuses == [204] * 10 + [429]
    unauthenticated = limited.client.get("/orders", headers={"api-key": "wrong"})
    assert unauthenticated.status_code == 401 and "x-sib-ratelimit-limit" not in unauthenticated.headers


def test_limits_can_be_scaled_or_switched_off() -> None:
    for doubled in running(make_shop(), limits=Limits(scale=2.0)):
        statuses = [doubled.get("/contacts", conform=False, limit=1).status_code for _ in range(21)]
        assert statuses == [200] * 20 + [429]
    for free in running(make_shop(), limits=Limits(enabled=False)):
        responses = [free.get("/contacts", conform=False, limit=1) for _ in range(30)]
        assert all(r.status_code == 200 and "x-sib-ratelimit-limit" not in r.headers for r in responses)


def test_injected_error_bursts_use_brevo_error_shape(limited: Brevo) -> None:
    limited.sim.faults.error_status = 503
    limited.sim.faults.error_burst = 2
    limited.sim.faults.error_path_prefix = "/v3/contacts"
    assert [limited.get("/contacts", conform=False).status_code for _ in range(3)] == [503, 503, 200]
    limited.sim.faults.error_status = 429
    limited.sim.faults.error_burst = 1
    storm = limited.get("/contacts")
    assert storm.status_code == 429 and "retry-after" not in storm.headers
    assert_conforms("brevo", storm)


def test_injected_auth_failure_after_n_requests(limited: Brevo) -> None:
    limited.sim.faults.auth_fail_after = 2
    statuses = [limited.get("/contacts/attributes", conform=False).status_code for _ in range(4)]
    assert statuses == [200, 200, 401, 401]
    assert limited.get("/contacts/attributes", conform=False).json()["code"] == "unauthorized"


def test_injected_slow_responses_and_request_log(limited: Brevo) -> None:
    limited.sim.faults.slow_seconds = 0.2
    started = time.monotonic()
    limited.get("/contacts", limit=1)
    assert time.monotonic() - started >= 0.2
    entry = limited.sim.log.entries()[-1]
    assert (entry.method, entry.path, entry.query, entry.status) == ("GET", "/v3/contacts", "limit=1", 200)
    assert entry.duration >= 0.2
