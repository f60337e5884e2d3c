"""Writing espd's values into audience merge fields without ever touching consent.

The only write is `PATCH /lists/{id}/members/{hash}?skip_merge_validation=true` with a body holding
nothing but `merge_fields` (notes sec. 2): no `status`, so a status never changes; PATCH of an
unknown member is a 404, so nobody is ever created. Small batches go as concurrent PATCHes under
the connection cap; large ones as the same PATCHes inside one `/batches` job (see `batches.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from connectors.base import EnsureReport, FieldSpec, PushTarget, RecordResult
from connectors.http import HttpClient, RecordRejected, RetryableError
from connectors.mailchimp.api import LIMIT_KEY, MAX_PAGE, MEMBER_GONE, audience_ids, get_json
from connectors.mailchimp.batches import BatchRunner, Operation
from connectors.mailchimp.fields import TAG_PREFIX, assign_tags, check_room, merge_type, render
from connectors.records import FieldUpdate


@dataclass(frozen=True, slots=True)
class AudienceFields:
    """One audience's merge fields: espd's (name -> tag, type) and how many exist in all."""

    espd: dict[str, tuple[str, str]]
    tags: frozenset[str]
    count: int


def _planned(fields: AudienceFields, plan: dict[str, str], specs: dict[str, FieldSpec]) -> AudienceFields:
    espd = fields.espd | {name: (tag, merge_type(specs[name])) for name, tag in plan.items()}
    return AudienceFields(espd, fields.tags | frozenset(plan.values()), fields.count + len(plan))


def member_path(list_id: str, subscriber_hash: str) -> str:
    return f"lists/{list_id}/members/{subscriber_hash}"


def split_vendor_id(vendor_id: str) -> tuple[str, str]:
    list_id, _, subscriber_hash = vendor_id.partition(":")
    if not list_id or not subscriber_hash:
        raise ValueError("vendor id must be <list_id>:<subscriber_hash>")
    return list_id, subscriber_hash


class MergeFieldTarget(PushTarget):
    max_batch_size: ClassVar[int] = 5000

    def __init__(
        self,
        client: HttpClient,
        list_id: str | None,
        *,
        dry_run: bool,
        batch_threshold: int,
        batches: BatchRunner,
    ) -> None:
        self.client = client
        self.list_id = list_id
        self.dry_run = dry_run
        self.batch_threshold = batch_threshold
        self.batches = batches
        self._fields: dict[str, AudienceFields] = {}

    async def _audience_fields(self, list_id: str, refresh: bool = False) -> AudienceFields:
        if refresh or list_id not in self._fields:
            body = await get_json(self.client, f"lists/{list_id}/merge-fields", count=MAX_PAGE)
            defs = [d for d in body.get("merge_fields") or [] if isinstance(d, dict)]
            espd = {
                str(d.get("name")): (str(d["tag"]), str(d.get("type")))
                for d in defs
                if str(d.get("tag", "")).startswith(TAG_PREFIX[:4])
            }
            tags = frozenset(str(d.get("tag")) for d in defs)
            self._fields[list_id] = AudienceFields(espd, tags, int(body.get("total_items") or len(defs)))
        return self._fields[list_id]

    async def list_fields(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for list_id in await audience_ids(self.client, self.list_id):
            fields = await self._audience_fields(list_id, refresh=True)
            found.update({name: kind for name, (_tag, kind) in fields.espd.items()})
        return found

    async def ensure_fields(self, specs: Sequence[FieldSpec]) -> EnsureReport:
        """Check every audience has room first, then create what is missing (never retype)."""
        plans: dict[str, dict[str, str]] = {}
        for list_id in await audience_ids(self.client, self.list_id):
            fields = await self._audience_fields(list_id, refresh=True)
            missing = [s.name for s in specs if s.name not in fields.espd]
            plans[list_id] = assign_tags(missing, fields.tags)
            check_room(list_id, fields.count, plans[list_id])
        by_name = {s.name: s for s in specs}
        created: set[str] = set()
        for list_id, plan in plans.items():
            for name, tag in plan.items():
                created.add(name)
                if not self.dry_run:
                    await self._create(list_id, by_name[name], tag)
            if plan and not self.dry_run:
                await self._audience_fields(list_id, refresh=True)
            elif plan:  # a dry run's pushes are rendered as if the fields existed
                self._fields[list_id] = _planned(self._fields[list_id], plan, by_name)
        existing = tuple(s.name for s in specs if s.name not in created)
        return EnsureReport(created=tuple(sorted(created)), existing=existing)

    async def _create(self, list_id: str, spec: FieldSpec, tag: str) -> None:
        body = {"tag": tag, "name": spec.name, "type": merge_type(spec), "required": False, "public": False}
        if spec.description:
            body["help_text"] = spec.description[:255]
        await self.client.request(
            "POST", f"lists/{list_id}/merge-fields", json=body, limit_key=LIMIT_KEY, idempotent=False
        )

    async def push(self, batch: Sequence[FieldUpdate]) -> list[RecordResult]:
        results: list[RecordResult | None] = [None] * len(batch)
        operations: list[tuple[int, Operation]] = []
        for index, update in enumerate(batch):
            try:
                operations.append((index, await self._operation(update)))
            except ValueError as exc:
                results[index] = RecordResult(update.customer_vendor_id, False, str(exc))
            except RecordRejected as exc:  # its audience's merge fields cannot be read (gone?)
                results[index] = RecordResult(update.customer_vendor_id, False, exc.verdict.message)
        if self.dry_run:
            outcomes = [(True, None)] * len(operations)
        elif len(operations) > self.batch_threshold:
            outcomes = await self.batches.run([op for _i, op in operations])
        else:
            outcomes = await asyncio.gather(*(self._patch(op) for _i, op in operations))
        for (index, _op), (ok, error) in zip(operations, outcomes, strict=True):
            results[index] = RecordResult(batch[index].customer_vendor_id, ok, error)
        return [r for r in results if r is not None]

    async def _operation(self, update: FieldUpdate) -> Operation:
        """The merge_fields-only body for one record; ValueError names a bad field or value."""
        list_id, subscriber_hash = split_vendor_id(update.customer_vendor_id)
        fields = await self._audience_fields(list_id)
        merge_fields: dict[str, Any] = {}
        for name, value in update.values.items():
            if name not in fields.espd:
                raise ValueError(f"{name}: no merge field in audience {list_id} (run ensure_fields first)")
            tag, kind = fields.espd[name]
            try:
                merge_fields[tag] = render(value, kind)
            except ValueError as exc:
                raise ValueError(f"{name}: cannot be written as a Mailchimp {kind}: {exc}") from None
        return Operation(member_path(list_id, subscriber_hash), {"merge_fields": merge_fields})

    async def _patch(self, operation: Operation) -> tuple[bool, str | None]:
        try:
            await self.client.request(
                "PATCH",
                operation.path,
                params={"skip_merge_validation": "true"},
                json=operation.body,
                limit_key=LIMIT_KEY,
            )
        except RecordRejected as exc:
            return False, MEMBER_GONE if exc.status == 404 else exc.verdict.message
        except RetryableError as exc:
            return False, f"gave up after retries: {exc.verdict.message}"
        return True, None
