"""espd's fields as Brevo contact attributes: typed `ESPD_*` definitions and consent-safe writes.

Writes go through `PUT /contacts/{id}?identifierType=contact_id` with a body holding ONLY
`attributes`, the one path the notes call consent-neutral: it never creates a contact, never adds
a list, never touches a blacklist flag. `/contacts/batch` is retired and `/contacts/import` adds
list membership and re-creates erased contacts, so neither is used. One PUT per contact: the
throughput ceiling is the contacts family's rate (600 contacts/min on General); PUTs run
concurrently and the limiter paces them.

Brevo silently drops a value whose JSON type does not match the attribute (still 204), so every
value is rendered strictly from the attribute's type AT BREVO (a user's pre-existing attribute is
never retyped; values follow its type or fail the record with a clear reason).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from connectors.base import EnsureReport, FieldSpec, FieldType, PushTarget, RecordResult
from connectors.brevo.api import CONTACTS, get_json
from connectors.http import AuthFailed, HttpClient, RecordRejected, RetryableError
from connectors.records import FieldUpdate, FieldValue

log = logging.getLogger("espd.connectors.brevo")
ATTRIBUTE_PREFIX = "ESPD_"
_NAME = re.compile(r"^[A-Z0-9_]{1,100}$")
# category -> text: espd's categories change with the model; an enumeration would need updating.
BREVO_TYPES = {
    FieldType.NUMBER: "float",
    FieldType.INTEGER: "float",
    FieldType.DATE: "date",
    FieldType.TEXT: "text",
    FieldType.BOOLEAN: "boolean",
    FieldType.CATEGORY: "text",
}


def attribute_name(field: str) -> str:
    """espd_churn_risk -> ESPD_CHURN_RISK; espd owns only ESPD_* attributes."""
    name = field.upper()
    if not name.startswith(ATTRIBUTE_PREFIX) or not _NAME.match(name):
        raise ValueError(
            f"field {field!r} cannot be a Brevo attribute espd owns: it needs the espd_ prefix and "
            "only letters, digits and underscores"
        )
    return name


def render(vendor_type: str, value: FieldValue) -> Any:
    """A canonical value as the JSON Brevo stores for `vendor_type`, or ValueError naming why not.

    None clears: "" for text; null elsewhere (Brevo documents no clearing value for typed attributes).
    """
    if value is None:
        return "" if vendor_type == "text" else None
    if vendor_type == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"a float attribute needs a finite number, got {type(value).__name__}")
        return float(value)
    if vendor_type == "date":
        return _date_text(value)
    if vendor_type == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"a boolean attribute needs true/false, got {type(value).__name__}")
        return value
    if vendor_type == "text":
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else format(value, "g")
    raise ValueError(f"espd does not write attributes of type {vendor_type!r}")


def _date_text(value: FieldValue) -> str:
    """`YYYY-MM-DD` from a date or an ISO datetime (an aware one is taken in UTC)."""
    if not isinstance(value, str):
        raise ValueError(f"a date attribute needs YYYY-MM-DD or an ISO datetime, got {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("a date attribute needs YYYY-MM-DD or an ISO datetime") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date().isoformat()


class AttributeTarget(PushTarget):
    max_batch_size: ClassVar[int] = 1000

    def __init__(self, client: HttpClient, *, dry_run: bool, concurrency: int) -> None:
        self.client = client
        self.dry_run = dry_run
        self.concurrency = max(1, concurrency)
        self._types: dict[str, str] | None = None  # attribute name -> Brevo type, as Brevo has it
        self._planned: dict[str, str] = {}  # dry run: what ensure_fields would have created

    async def list_fields(self) -> dict[str, str]:
        body = await get_json(self.client, "contacts/attributes", family=CONTACTS)
        self._types = {
            str(a["name"]).upper(): str(a.get("type") or a.get("category") or "")
            for a in body.get("attributes") or []
            if isinstance(a, dict) and a.get("name")
        }
        return dict(self._types)

    async def ensure_fields(self, specs: Sequence[FieldSpec]) -> EnsureReport:
        wanted = {attribute_name(spec.name): BREVO_TYPES[spec.type] for spec in specs}
        have = await self.list_fields()
        created = []
        for name, vendor_type in wanted.items():
            if name in have:
                if have[name] != vendor_type:
                    log.warning(
                        "event=attribute_type_kept name=%s brevo=%s espd=%s", name, have[name], vendor_type
                    )
                continue
            if self.dry_run:
                self._planned[name] = vendor_type
            else:
                await self.client.request(
                    "POST",
                    f"contacts/attributes/normal/{name}",
                    json={"type": vendor_type},
                    limit_key=CONTACTS,
                    idempotent=False,
                )
                assert self._types is not None
                self._types[name] = vendor_type
            created.append(name)
        return EnsureReport(created=tuple(created), existing=tuple(n for n in wanted if n in have))

    async def push(self, batch: Sequence[FieldUpdate]) -> list[RecordResult]:
        if self._types is None:
            await self.list_fields()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(update: FieldUpdate) -> RecordResult:
            async with gate:
                return await self._push_one(update)

        return list(await asyncio.gather(*(one(u) for u in batch)))

    def _body(self, update: FieldUpdate) -> dict[str, Any]:
        if not update.customer_vendor_id.isdigit():
            raise ValueError("the vendor id must be Brevo's numeric contact id")
        types = {**(self._types or {}), **self._planned}
        attributes = {}
        for field, value in update.values.items():
            name = attribute_name(field)
            if name not in types:
                raise ValueError(f"attribute {name} is not defined at Brevo (run ensure_fields)")
            try:
                attributes[name] = render(types[name], value)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return {"attributes": attributes}

    async def _push_one(self, update: FieldUpdate) -> RecordResult:
        vendor_id = update.customer_vendor_id
        try:
            body = self._body(update)
        except ValueError as exc:
            return RecordResult(vendor_id, False, str(exc))
        if self.dry_run:
            log.info("event=dry_run_push contact_id=%s attributes=%s", vendor_id, sorted(body["attributes"]))
            return RecordResult(vendor_id, True)
        try:
            await self.client.request(
                "PUT",
                f"contacts/{vendor_id}",
                params={"identifierType": "contact_id"},
                json=body,
                limit_key=CONTACTS,
            )
        except AuthFailed:
            raise
        except (RecordRejected, RetryableError) as exc:
            return RecordResult(vendor_id, False, exc.verdict.message)
        return RecordResult(vendor_id, True)
