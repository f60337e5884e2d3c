"""The contact store: contacts in creation order, lookups by every identifier type, and the write
path every endpoint (PUT, batch, import) shares.

Paging reads the live store (no snapshot isolation, like Brevo): a delete or a newly matching
contact shifts later offsets. Filtered selections are cached per filter and invalidated by a version
counter that every write bumps, so a read-only pull costs O(page) per request after the first page.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from simulators.brevo.attributes import Attribute
from simulators.brevo.errors import BrevoError, invalid, not_found

IDENTIFIER_TYPES = ("email_id", "contact_id", "ext_id", "phone_id", "whatsapp_id", "landline_number_id")
_ATTRIBUTE_OF_TYPE = {"phone_id": "SMS", "whatsapp_id": "WHATSAPP", "landline_number_id": "LANDLINE_NUMBER"}


@dataclass(slots=True)
class Contact:
    id: int
    email: str | None
    created_at: datetime
    modified_at: datetime
    email_blacklisted: bool = False
    sms_blacklisted: bool = False
    list_ids: list[int] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    ext_id: str | None = None
    created_monotonic: float = float("-inf")  # when the simulator created it (425 window)
    smtp_blacklist_sender: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ContactChange:
    """What one `updateContact` (or batch item) asks for, already validated."""

    attributes: dict[str, Any] = field(default_factory=dict)
    email_blacklisted: bool | None = None
    sms_blacklisted: bool | None = None
    list_ids: list[int] = field(default_factory=list)
    unlink_list_ids: list[int] = field(default_factory=list)
    ext_id: str | None = None
    smtp_blacklist_sender: list[str] | None = None


class ContactStore:
    """Contacts by id plus secondary indexes; callers hold the state lock."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.by_id: dict[int, Contact] = {}
        self.order: list[int] = []  # ids ascending = creation order
        self.by_email: dict[str, int] = {}
        self.version = 0
        self.next_id = 1
        self._cache: dict[Any, tuple[int, list[int]]] = {}

    # -- reading -----------------------------------------------------------------------------

    def select(self, key: Any, keep: Callable[[Contact], bool] | None) -> list[int]:
        """Ids (creation order) of contacts passing `keep`, cached until the next write."""
        if keep is None:
            return self.order
        cached = self._cache.get(key)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        ids = [cid for cid in self.order if keep(self.by_id[cid])]
        self._cache[key] = (self.version, ids)
        return ids

    def find(self, identifier: str, identifier_type: str | None) -> Contact:
        """The contact an `{identifier}` path value names, or a 400/404."""
        if identifier_type is not None and identifier_type not in IDENTIFIER_TYPES:
            raise invalid(f"identifierType must be one of {', '.join(IDENTIFIER_TYPES)}")
        kind = identifier_type or _guess_type(identifier)
        contact = self._lookup(kind, identifier)
        if contact is None:
            raise not_found("Contact does not exist")
        return contact

    def _lookup(self, kind: str, identifier: str) -> Contact | None:
        if kind == "email_id":
            cid = self.by_email.get(identifier.lower())
            return self.by_id.get(cid) if cid is not None else None
        if kind == "contact_id":
            if not identifier.isdigit():
                raise invalid("identifier must be a numeric contact id for identifierType=contact_id")
            return self.by_id.get(int(identifier))
        if kind == "ext_id":
            return next((c for c in self.by_id.values() if c.ext_id == identifier), None)
        attribute = _ATTRIBUTE_OF_TYPE[kind]
        return next((c for c in self.by_id.values() if c.attributes.get(attribute) == identifier), None)

    # -- writing -----------------------------------------------------------------------------

    def add(self, contact: Contact) -> Contact:
        if contact.id >= self.next_id:
            self.next_id = contact.id + 1
        self.by_id[contact.id] = contact
        bisect.insort(self.order, contact.id)
        if contact.email:
            self.by_email[contact.email.lower()] = contact.id
        self.version += 1
        return contact

    def create(self, email: str, monotonic: float) -> Contact:
        now = self.now()
        contact = Contact(id=self.next_id, email=email, created_at=now, modified_at=now)
        contact.created_monotonic = monotonic
        return self.add(contact)

    def delete(self, contact: Contact) -> None:
        del self.by_id[contact.id]
        self.order.pop(bisect.bisect_left(self.order, contact.id))
        if contact.email:
            self.by_email.pop(contact.email.lower(), None)
        self.version += 1

    def touch(self, contact: Contact) -> None:
        """Any write moves `modifiedAt`, even one that changed nothing visible (as Brevo does)."""
        contact.modified_at = max(self.now(), contact.modified_at)
        self.version += 1

    def apply(self, contact: Contact, change: ContactChange) -> None:
        new_email = change.attributes.get("EMAIL")
        if isinstance(new_email, str) and new_email.lower() != (contact.email or "").lower():
            self._rename(contact, new_email)
        for name, value in change.attributes.items():
            if name != "EMAIL":
                contact.attributes[name] = value
        if change.email_blacklisted is not None:
            contact.email_blacklisted = change.email_blacklisted
        if change.sms_blacklisted is not None:
            contact.sms_blacklisted = change.sms_blacklisted
        contact.list_ids = sorted(
            (set(contact.list_ids) | set(change.list_ids)) - set(change.unlink_list_ids)
        )
        if change.ext_id is not None:
            contact.ext_id = change.ext_id
        if change.smtp_blacklist_sender is not None:
            contact.smtp_blacklist_sender = list(change.smtp_blacklist_sender)
        self.touch(contact)

    def _rename(self, contact: Contact, new_email: str) -> None:
        if new_email.lower() in self.by_email:
            raise BrevoError(
                400,
                "duplicate_parameter",
                "Contact already exist",
                metadata={"duplicate_identifiers": ["email"]},
            )
        if contact.email:
            self.by_email.pop(contact.email.lower(), None)
        contact.email = new_email
        self.by_email[new_email.lower()] = contact.id


def _guess_type(identifier: str) -> str:
    """Without `identifierType`: an email has an @, a number is a contact id, else an EXT_ID."""
    if "@" in identifier:
        return "email_id"
    if identifier.isdigit():
        return "contact_id"
    return "ext_id"


def validate_change(
    body: dict[str, Any],
    definitions: dict[str, Attribute],
    where: str = "",
) -> tuple[ContactChange, list[str]]:
    """Check an `updateContact`-shaped body; returns the change and the names dropped for a wrong type.

    Undefined attributes are a 400 (the strict choice: Brevo says they "must be present in your
    account"); wrongly typed values are dropped silently, exactly as Brevo documents.
    """
    attributes = body.get("attributes", {})
    if not isinstance(attributes, dict):
        raise invalid(f"{where}attributes must be an object")
    change = ContactChange()
    dropped: list[str] = []
    for name, value in attributes.items():
        if name == "EMAIL":
            if not isinstance(value, str) or "@" not in value:
                raise invalid(f"{where}attributes.EMAIL is not a valid email address")
            change.attributes[name] = value
            continue
        definition = definitions.get(name)
        if definition is None:
            hint = " (attribute names are upper case)" if name.upper() in definitions else ""
            raise invalid(f"{where}attributes.{name}: attribute does not exist in your account{hint}")
        if definition.fits(value):
            change.attributes[name] = value
        else:
            dropped.append(name)
    change.email_blacklisted = _optional_bool(body, "emailBlacklisted", where)
    change.sms_blacklisted = _optional_bool(body, "smsBlacklisted", where)
    change.list_ids = _int_list(body, "listIds", where)
    change.unlink_list_ids = _int_list(body, "unlinkListIds", where)
    if "ext_id" in body:
        if not isinstance(body["ext_id"], str):
            raise invalid(f"{where}ext_id must be a string")
        change.ext_id = body["ext_id"]
    if "smtpBlacklistSender" in body:
        change.smtp_blacklist_sender = [str(s) for s in body["smtpBlacklistSender"]]
    return change, dropped


def _optional_bool(body: dict[str, Any], name: str, where: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise invalid(f"{where}{name} must be a boolean")
    return value


def _int_list(body: dict[str, Any], name: str, where: str) -> list[int]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise invalid(f"{where}{name} must be an array of list ids")
    return value
