"""The simulator's in-memory records: profiles (mutable), metrics and events (immutable), plus id makers
that look like Klaviyo's (26-char ULID profile and job ids, 6-char metric ids, 11-char event ids)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# Top-level profile attributes that are plain nullable strings (`location` and `properties` are objects).
STRING_ATTRIBUTES = (
    "email",
    "phone_number",
    "external_id",
    "_kx",
    "first_name",
    "last_name",
    "organization",
    "locale",
    "title",
    "image",
)
LOCATION_KEYS = (
    "address1",
    "address2",
    "city",
    "country",
    "latitude",
    "longitude",
    "region",
    "zip",
    "timezone",
    "ip",
)


def _encode(number: int, alphabet: str, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, len(alphabet))
        chars.append(alphabet[digit])
    return "".join(reversed(chars))


def ulid(salt: int, n: int) -> str:
    """A ULID-shaped id (26 Crockford base32 chars starting with 01), unique per (salt, n)."""
    return "01" + _encode((salt % 2**40) * 2**60 + n, _CROCKFORD, 24)


def base62_id(salt: int, n: int, width: int) -> str:
    """A short id unique for every n < 62**width (the multiplier is coprime with 62, so n maps 1:1)."""
    return _encode((n * 1_000_000_007 + salt * 7919) % 62**width, _BASE62, width)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass(slots=True)
class Profile:
    id: str
    created: datetime
    updated: datetime
    strings: dict[str, str | None] = field(default_factory=dict)  # STRING_ATTRIBUTES present on the profile
    location: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    subscriptions: dict[str, Any] = field(default_factory=dict)
    predictive: dict[str, Any] = field(default_factory=dict)
    last_event_date: datetime | None = None

    def get(self, name: str) -> str | None:
        return self.strings.get(name)

    @property
    def suppression(self) -> dict[str, Any] | None:
        """The first global email suppression (what the suppression.* filters and sorts look at)."""
        marketing = self.subscriptions.get("email", {}).get("marketing", {})
        found = marketing.get("suppression") or []
        return found[0] if found else None


@dataclass(frozen=True, slots=True)
class Integration:
    id: str
    name: str
    category: str

    def to_json(self) -> dict[str, str]:
        return {
            "object": "integration",
            "id": self.id,
            "key": self.name.lower(),
            "name": self.name,
            "category": self.category,
        }


SHOPIFY = Integration("0eMvjm", "Shopify", "eCommerce")
KLAVIYO = Integration("0rG4eQ", "Klaviyo", "Internal")
API = Integration("7FtS4J", "API", "API")


@dataclass(frozen=True, slots=True)
class Metric:
    id: str
    name: str
    integration: Integration
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class Event:
    """An immutable event. `properties` is built lazily from `source` for seeded events (a small shop has
    hundreds of thousands, and most are never served)."""

    id: str
    metric_id: str
    profile_id: str
    datetime: datetime  # whole seconds, so (datetime, id) and (timestamp, id) sort the same way
    uuid: str
    source: Any = None
    build: Callable[[Any], dict[str, Any]] | None = None
    fixed_properties: dict[str, Any] | None = None

    @property
    def timestamp(self) -> int:
        return int(self.datetime.timestamp())

    def properties(self) -> dict[str, Any]:
        if self.build is not None:
            return self.build(self.source)
        return dict(self.fixed_properties or {})


def event_uuid(salt: int, n: int) -> str:
    return str(uuid.UUID(int=(salt % 2**32) * 2**64 + n))
