"""espd fields as Mailchimp merge fields: tags, types and value rendering.

Tags are at most 10 characters of `[A-Z0-9_]` and unique per audience; espd owns the ones starting
`ESPD`. A field's tag is found again by the merge field's `name` (espd writes its own field name
there), so the mapping survives renames of our tag scheme; new tags are derived deterministically
from the name, with a hash-based fallback when two names compress to the same tag.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime

from connectors.base import FieldSpec, FieldType
from connectors.records import FieldValue

TAG_PREFIX = "ESPD_"
MAX_TAG = 10
MAX_TEXT = 255
MAX_MERGE_FIELDS = 30  # per audience, the defaults (FNAME, LNAME, ADDRESS, PHONE, BIRTHDAY) included
MERGE_TYPE = {
    FieldType.NUMBER: "number",
    FieldType.INTEGER: "number",
    FieldType.BOOLEAN: "number",  # Mailchimp has no boolean merge field: 1/0
    FieldType.DATE: "date",
    FieldType.TEXT: "text",
    FieldType.CATEGORY: "text",
}
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class MergeFieldLimitError(RuntimeError):
    """The audience cannot take the fields espd needs; raised before anything is created."""


def _compact(name: str) -> str:
    stem = name[len("espd_") :] if name.lower().startswith("espd_") else name
    return re.sub(r"[^A-Z0-9]", "", stem.upper()) or "X"


def _hashed(name: str, salt: int, width: int) -> str:
    digest = int(hashlib.sha1(f"{name}:{salt}".encode()).hexdigest(), 16)
    chars = []
    for _ in range(width):
        digest, index = divmod(digest, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "".join(chars)


def tag_candidates(name: str) -> Iterator[str]:
    """Tags to try for `name`, best first: ESPD_CHURN, then ESPD_CH + 3 hash chars, salted on."""
    room = MAX_TAG - len(TAG_PREFIX)
    compact = _compact(name)
    yield TAG_PREFIX + compact[:room]
    salt = 0
    while True:
        yield TAG_PREFIX + compact[: room - 3] + _hashed(name, salt, 3)
        salt += 1


def assign_tags(names: Iterable[str], taken: Iterable[str]) -> dict[str, str]:
    """A new tag for each name, distinct from `taken` and from each other (sorted order: stable)."""
    used = set(taken)
    tags: dict[str, str] = {}
    for name in sorted(set(names)):
        tag = next(t for t in tag_candidates(name) if t not in used)
        used.add(tag)
        tags[name] = tag
    return tags


def merge_type(spec: FieldSpec) -> str:
    return MERGE_TYPE[spec.type]


def check_room(list_id: str, in_use: int, needed: Mapping[str, str]) -> None:
    free = max(0, MAX_MERGE_FIELDS - in_use)
    if len(needed) > free:
        raise MergeFieldLimitError(
            f"mailchimp audience {list_id}: {len(needed)} new merge field(s) needed "
            f"({', '.join(sorted(needed))}) but only {free} of {MAX_MERGE_FIELDS} are free "
            f"({in_use} in use); delete unused merge fields in Mailchimp or push fewer espd fields"
        )


def render(value: FieldValue, vendor_type: str) -> FieldValue:
    """The value as Mailchimp stores it for a field of `vendor_type` ("" clears it)."""
    if value is None:
        return ""
    if vendor_type == "number":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int | float):
            return value
        return float(str(value))  # ValueError names the problem
    if vendor_type == "date":
        return _date(value)
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if len(text) > MAX_TEXT:
        raise ValueError(f"text longer than {MAX_TEXT} characters ({len(text)})")
    return text


def _date(value: FieldValue) -> str:
    """Dates arrive as YYYY-MM-DD or ISO datetimes; Mailchimp wants YYYY-MM-DD."""
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        pass
    return date.fromisoformat(text[:10]).isoformat()
