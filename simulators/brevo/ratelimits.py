"""Brevo's per-family rate limits (General plan), enforced with one RPS and one RPH token bucket per
family, and the `x-sib-ratelimit-*` headers that go with them.

Brevo counts per account and per endpoint family, so pull and push in `/v3/contacts/*` share one
budget. Over the limit the answer is 429 with an `errorModel` body and NO `Retry-After`: clients
must read `x-sib-ratelimit-reset`.

Header semantics used here (Brevo documents "seconds to reset" only): `limit` and `remaining` are
those of the bucket with the fewest tokens left; `reset` is the whole seconds until that bucket is
full again, or, on a 429, until one request is allowed again (at least 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from simulators.harness import Limits, TokenBucket


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    per_second: float | None
    per_hour: float


# Section 4 of notes/brevo.md, General plan.
CONTACTS = Family("contacts", 10, 36_000)
EVENTS = Family("events", 10, 36_000)
ORDER_STATUS = Family("orders_status", 5, 18_000)
SMTP = Family("smtp", None, 300)
OTHER = Family("other", None, 100)


def family_of(method: str, path: str) -> Family:
    """Which budget a request under the API base path spends (`path` without the `/v3` prefix)."""
    if path == "/contacts" or path.startswith("/contacts/"):
        return CONTACTS
    if method == "POST" and path == "/events":
        return EVENTS
    if method == "POST" and path == "/orders/status":
        return ORDER_STATUS
    if path.startswith("/smtp/"):
        return SMTP
    return OTHER


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    headers: dict[str, str]


class RateLimiter:
    """All of an account's buckets; `check` spends one request of the request's family."""

    def __init__(self, limits: Limits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._buckets: dict[str, list[TokenBucket]] = {}
        for family in (CONTACTS, EVENTS, ORDER_STATUS, SMTP, OTHER):
            buckets = [
                TokenBucket(family.per_hour * limits.scale / 3600, family.per_hour * limits.scale, clock)
            ]
            if family.per_second is not None:
                rps = family.per_second * limits.scale
                buckets.insert(0, TokenBucket(rps, rps, clock))
            self._buckets[family.name] = buckets

    def check(self, family: Family) -> Verdict | None:
        """None when limits are switched off; else whether the request may run, and its headers."""
        if not self.limits.enabled:
            return None
        buckets = self._buckets[family.name]
        blocked = [b for b in buckets if b.available() < 1]
        if blocked:
            bucket = max(blocked, key=lambda b: b.seconds_until(1))
            reset = max(1, math.ceil(bucket.seconds_until(1)))
            return Verdict(False, rate_headers(bucket.capacity, 0, reset))
        for bucket in buckets:
            bucket.take(1)
        tightest = min(buckets, key=lambda b: b.available() / b.capacity)
        left = tightest.available()
        reset = math.ceil((tightest.capacity - left) / tightest.rate)
        return Verdict(True, rate_headers(tightest.capacity, math.floor(left), reset))


def rate_headers(limit: float, remaining: int, reset: int) -> dict[str, str]:
    return {
        "x-sib-ratelimit-limit": str(math.floor(limit)),
        "x-sib-ratelimit-remaining": str(remaining),
        "x-sib-ratelimit-reset": str(reset),
    }
