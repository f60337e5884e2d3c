"""The audience's members and merge fields, with the ordering indexes paging needs.

There is deliberately no snapshot isolation: a listing is cut from the current order at request time,
so a member written between two page requests moves (with `sort_field=last_changed` to the end) and
every later row shifts, exactly the effect that makes naive offset paging skip rows on the real API.
Orders are cached per (status bucket, sort field) and rebuilt only after a write, so paging an
unchanged audience costs O(page) per request.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simulators.mailchimp.merge_fields import DEFAULT_FIELDS, MergeField
from simulators.mailchimp.query import iso

Clock = Callable[[], datetime]
LISTED = "listed"  # the default listing: every member that is not archived


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode()).hexdigest()


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Member:
    id: str
    email: str
    status: str
    merge_fields: dict[str, Any]
    timestamp_signup: datetime
    timestamp_opt: datetime
    last_changed: datetime
    seq: int
    unique_email_id: str = ""
    contact_id: str = ""
    avg_open_rate: float = 0.0
    avg_click_rate: float = 0.0
    member_rating: int = 2
    country_code: str = ""
    timezone: str = ""
    vip: bool = False

    def to_json(self, list_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "email_address": self.email,
            "unique_email_id": self.unique_email_id,
            "contact_id": self.contact_id,
            "full_name": " ".join(
                str(self.merge_fields.get(tag, ""))
                for tag in ("FNAME", "LNAME")
                if self.merge_fields.get(tag)
            ),
            "web_id": self.seq + 1000,
            "email_type": "html",
            "status": self.status,
            "merge_fields": dict(self.merge_fields),
            "interests": {},
            "stats": {"avg_open_rate": self.avg_open_rate, "avg_click_rate": self.avg_click_rate},
            "ip_signup": "",
            "timestamp_signup": iso(self.timestamp_signup),
            "ip_opt": "",
            "timestamp_opt": iso(self.timestamp_opt),
            "member_rating": self.member_rating,
            "last_changed": iso(self.last_changed),
            "language": "",
            "vip": self.vip,
            "email_client": "",
            "location": {
                "latitude": 0,
                "longitude": 0,
                "gmtoff": 0,
                "dstoff": 0,
                "country_code": self.country_code,
                "timezone": self.timezone,
            },
            "source": "API - Generic",
            "tags_count": 0,
            "tags": [],
            "list_id": list_id,
        }


SORT_KEYS: dict[str, Callable[[Member], tuple[datetime, int]]] = {
    "last_changed": lambda m: (m.last_changed, m.seq),
    "timestamp_opt": lambda m: (m.timestamp_opt, m.seq),
    "timestamp_signup": lambda m: (m.timestamp_signup, m.seq),
}


def _seconds(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass
class Audience:
    """One Mailchimp list: its members, merge field definitions and permanently deleted addresses."""

    list_id: str
    name: str
    created: datetime
    clock: Clock = utc_now
    members: dict[str, Member] = field(default_factory=dict)
    merge_fields: dict[str, MergeField] = field(default_factory=dict)
    forgotten: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock)
    version: int = 0
    next_merge_id: int = 1
    _by_contact: dict[str, str] = field(default_factory=dict)
    _orders: dict[tuple[str, str], tuple[int, list[Member], list[tuple[datetime, int]]]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        for tag, name, kind in DEFAULT_FIELDS:
            self.add_merge_field({"tag": tag, "name": name, "type": kind, "public": True})

    # merge field definitions -------------------------------------------------------------------
    def add_merge_field(self, values: dict[str, Any]) -> MergeField:
        with self.lock:
            merge_id = self.next_merge_id
            self.next_merge_id += 1
            tag = values.get("tag") or f"MMERGE{merge_id}"
            definition = MergeField(
                merge_id=merge_id,
                tag=tag,
                name=values["name"],
                type=values["type"],
                display_order=values.get("display_order", merge_id + 1),
                **{
                    k: values[k]
                    for k in ("required", "default_value", "public", "options", "help_text")
                    if k in values
                },
            )
            if not definition.options and definition.type == "text":
                definition.options = {"size": 25}
            self.merge_fields[tag] = definition
            return definition

    def merge_field_by_id(self, merge_id: str) -> MergeField | None:
        return next((d for d in self.merge_fields.values() if str(d.merge_id) == merge_id), None)

    def drop_merge_field(self, definition: MergeField) -> None:
        """Deleting a field deletes its data in every member (no last_changed bump)."""
        with self.lock:
            del self.merge_fields[definition.tag]
            for member in self.members.values():
                member.merge_fields.pop(definition.tag, None)

    # members -----------------------------------------------------------------------------------
    def now(self) -> datetime:
        return _seconds(self.clock())

    def add_member(self, member: Member) -> Member:
        with self.lock:
            member.timestamp_signup = _seconds(member.timestamp_signup)
            member.timestamp_opt = _seconds(member.timestamp_opt)
            member.last_changed = _seconds(member.last_changed)
            digest = hashlib.md5(f"{self.list_id}:{member.email}".encode()).hexdigest()
            member.unique_email_id = member.unique_email_id or digest[:10]
            member.contact_id = member.contact_id or digest
            self.members[member.id] = member
            self._by_contact[member.contact_id] = member.id
            self.version += 1
            return member

    def resolve(self, key: str) -> Member | None:
        """Paths take the md5 subscriber hash, the raw email address or the contact_id."""
        with self.lock:
            if key in self.members:
                return self.members[key]
            if "@" in key:
                return self.members.get(subscriber_hash(key))
            return self.members.get(self._by_contact.get(key, ""))

    def touch(self, member: Member, at: datetime | None = None) -> None:
        """Every member write bumps last_changed (never opens or clicks)."""
        with self.lock:
            member.last_changed = _seconds(at) if at else self.now()
            self.version += 1

    def forget(self, member: Member) -> None:
        with self.lock:
            del self.members[member.id]
            self._by_contact.pop(member.contact_id, None)
            self.forgotten.add(member.id)
            self.version += 1

    def next_seq(self) -> int:
        return len(self.members) + len(self.forgotten)

    def ordered(self, bucket: str, sort_field: str) -> tuple[list[Member], list[tuple[datetime, int]]]:
        """Members of a status bucket in sort order, with their sort keys (for bisecting windows)."""
        with self.lock:
            cached = self._orders.get((bucket, sort_field))
            if cached and cached[0] == self.version:
                return cached[1], cached[2]
            key = SORT_KEYS[sort_field]
            chosen = [
                m
                for m in self.members.values()
                if (m.status != "archived" if bucket == LISTED else m.status == bucket)
            ]
            chosen.sort(key=key)
            keys = [key(m) for m in chosen]
            self._orders[(bucket, sort_field)] = (self.version, chosen, keys)
            return chosen, keys


def window(
    members: list[Member], keys: list[tuple[datetime, int]], since: datetime | None, before: datetime | None
) -> list[Member]:
    """The members strictly inside (since, before) of a list sorted by that same timestamp."""
    start = 0 if since is None else bisect.bisect_right(keys, (since, 1 << 62))
    end = len(members) if before is None else bisect.bisect_left(keys, (before, -1))
    return members[start:end]
