"""Profile write rules shared by `profile-import`, `PATCH /api/profiles/{id}` and bulk import jobs.

Validation is as strict as the real API: unknown attributes are named with their JSON pointer ("'x' is
not a valid field for the resource 'profile'."), a profile needs an identifier, a profile entry is at most
100 KB. Writes merge: omitted fields stay, a top-level `null` clears, `properties` merge per key,
`meta.patch_properties` appends/unappends/unsets, and every write bumps `updated`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from simulators.klaviyo.errors import KlaviyoError, invalid
from simulators.klaviyo.records import LOCATION_KEYS, STRING_ATTRIBUTES, Profile
from simulators.klaviyo.state import IDENTIFIERS, KlaviyoState

MAX_PROFILE_BYTES = 100 * 1024
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+[1-9]\d{6,14}")
_PATCH_KEYS = frozenset({"append", "unappend", "unset"})


@dataclass(frozen=True)
class ProfileWrite:
    """A validated profile entry: optional Klaviyo id, attributes as sent, and `meta` as sent."""

    profile_id: str | None
    attributes: dict[str, Any]
    meta: dict[str, Any]

    @property
    def identifiers(self) -> dict[str, str]:
        return {name: self.attributes[name] for name in IDENTIFIERS if self.attributes.get(name)}


def _not_valid(name: str, pointer: str) -> KlaviyoError:
    return invalid(f"'{name}' is not a valid field for the resource 'profile'.", pointer=f"{pointer}/{name}")


def _check_attributes(attributes: Any, pointer: str, allowed_strings: frozenset[str]) -> None:
    if not isinstance(attributes, dict):
        raise invalid("'attributes' must be an object.", pointer=pointer)
    for name, value in attributes.items():
        if name in allowed_strings:
            if value is not None and not isinstance(value, str):
                raise invalid(f"'{name}' must be a string or null.", pointer=f"{pointer}/{name}")
        elif name == "location":
            _check_location(value, f"{pointer}/location")
        elif name == "properties":
            if value is not None and not isinstance(value, dict):
                raise invalid("'properties' must be an object or null.", pointer=f"{pointer}/properties")
        else:
            raise _not_valid(name, pointer)


def _check_location(value: Any, pointer: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise invalid("'location' must be an object or null.", pointer=pointer)
    for key, item in value.items():
        if key not in LOCATION_KEYS:
            raise invalid(f"'{key}' is not a valid field for 'location'.", pointer=f"{pointer}/{key}")
        if item is not None and not isinstance(item, str | int | float):
            raise invalid(f"'{key}' must be a string or null.", pointer=f"{pointer}/{key}")


def _check_meta(meta: Any, pointer: str) -> dict[str, Any]:
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise invalid("'meta' must be an object.", pointer=pointer)
    for key in meta:
        if key not in ("patch_properties", "patch_identifiers"):
            raise invalid(f"'{key}' is not a valid field for profile meta.", pointer=f"{pointer}/{key}")
    patch = meta.get("patch_properties") or {}
    if not isinstance(patch, dict):
        raise invalid("'patch_properties' must be an object.", pointer=f"{pointer}/patch_properties")
    for key, value in patch.items():
        where = f"{pointer}/patch_properties/{key}"
        if key not in _PATCH_KEYS:
            raise invalid(f"'{key}' is not a valid patch operation.", pointer=where)
        if key == "unset":
            names = [value] if isinstance(value, str) else value
            if value is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                raise invalid("'unset' must be a string or a list of strings.", pointer=where)
        elif value is not None and not isinstance(value, dict):
            raise invalid(f"'{key}' must be an object.", pointer=where)
    return meta


def parse_profile(
    entry: Any,
    pointer: str,
    *,
    allowed_strings: frozenset[str] = frozenset(STRING_ATTRIBUTES),
    needs_identifier: bool,
) -> ProfileWrite:
    """Check one profile resource object's shape (not its values); raise a 400 naming the pointer."""
    if not isinstance(entry, dict):
        raise invalid("Expected a profile resource object.", pointer=pointer)
    if entry.get("type") != "profile":
        raise KlaviyoError(
            409, "conflict", f"Expected type 'profile', got {entry.get('type')!r}.", pointer=f"{pointer}/type"
        )
    for key in entry:
        if key not in ("type", "id", "attributes", "meta"):
            raise invalid(
                f"'{key}' is not a valid member of a profile resource object.", pointer=f"{pointer}/{key}"
            )
    profile_id = entry.get("id")
    if profile_id is not None and not isinstance(profile_id, str):
        raise invalid("'id' must be a string.", pointer=f"{pointer}/id")
    if "attributes" not in entry:
        raise invalid("'attributes' is required.", pointer=pointer)
    _check_attributes(entry["attributes"], f"{pointer}/attributes", allowed_strings)
    meta = _check_meta(entry.get("meta"), f"{pointer}/meta")
    write = ProfileWrite(profile_id, entry["attributes"], meta)
    if needs_identifier and not write.profile_id and not write.identifiers:
        raise invalid(
            "One of 'email', 'phone_number', 'external_id' or 'id' is required to identify a profile.",
            pointer=f"{pointer}/attributes",
        )
    if len(json.dumps(entry).encode()) > MAX_PROFILE_BYTES:
        raise KlaviyoError(413, "payload_too_large", "A profile may not exceed 100KB.", pointer=pointer)
    return write


def value_problem(write: ProfileWrite, rejected: set[str]) -> tuple[str, str] | None:
    """(attribute, detail) for a value the real API refuses (bad email or phone), or for a record the
    `Faults.reject_records` fault names; None when the values are acceptable."""
    email, phone = write.attributes.get("email"), write.attributes.get("phone_number")
    if email is not None and not _EMAIL.fullmatch(email):
        return "email", "Invalid email address."
    if phone is not None and not _PHONE.fullmatch(phone):
        return "phone_number", "Invalid phone number format (Example of a valid format: +12345678901)."
    named = {write.profile_id, *write.identifiers.values()} & rejected
    if named:
        return "email", "This profile was rejected (injected fault)."
    return None


def resolve(state: KlaviyoState, write: ProfileWrite) -> Profile | None:
    """The existing profile a write targets, None for a new one; 409 when identifiers point at two
    different profiles, 404 for an unknown Klaviyo id."""
    found: dict[str, Profile] = {}
    if write.profile_id:
        target = state.lookup("id", write.profile_id)
        if target is None:
            raise KlaviyoError(404, "not_found", f"A profile with id '{write.profile_id}' does not exist.")
        found[target.id] = target
    for name, value in write.identifiers.items():
        match = state.lookup(name, value)
        if match is not None:
            found[match.id] = match
    if len(found) > 1:
        raise KlaviyoError(409, "duplicate_profile", "The identifiers given belong to different profiles.")
    return next(iter(found.values()), None)


def apply(state: KlaviyoState, profile: Profile, write: ProfileWrite) -> None:
    """Merge a validated write into `profile` and bump its `updated` time."""
    before = {name: profile.get(name) for name in IDENTIFIERS}
    for name, value in write.attributes.items():
        if name in STRING_ATTRIBUTES:
            profile.strings[name] = value.strip().lower() if name == "email" and value else value
        elif name == "location":
            _merge(profile.location, value)
        elif name == "properties":
            if value is None:
                profile.properties.clear()
            else:
                profile.properties.update(value)
    _patch_properties(profile.properties, write.meta.get("patch_properties") or {})
    profile.updated = state.now()
    state.reindex(profile, before)


def _merge(target: dict[str, Any], value: dict[str, Any] | None) -> None:
    if value is None:
        target.clear()
        return
    for key, item in value.items():
        if item is None:
            target.pop(key, None)
        else:
            target[key] = item


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _patch_properties(properties: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in (patch.get("append") or {}).items():
        current = properties.get(key)
        properties[key] = ([] if current is None else _as_list(current)) + _as_list(value)
    for key, value in (patch.get("unappend") or {}).items():
        if key in properties:
            dropped = _as_list(value)
            properties[key] = [item for item in _as_list(properties[key]) if item not in dropped]
    unset = patch.get("unset")
    for key in [unset] if isinstance(unset, str) else unset or []:
        properties.pop(key, None)


def upsert(state: KlaviyoState, write: ProfileWrite) -> tuple[Profile, bool]:
    """Create or update the profile a write identifies; returns (profile, created)."""
    with state.lock:
        profile = resolve(state, write)
        created = profile is None
        if profile is None:
            profile = state.new_profile()
        apply(state, profile, write)
        return profile, created
