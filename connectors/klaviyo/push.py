"""Writing espd's fields to Klaviyo profiles: bulk import jobs for batches, profile-import for deltas.

Only `attributes.properties` under the `espd_` prefix are sent, addressed by the Klaviyo profile id,
with no list relationship: nothing here can subscribe anyone or change consent. A value of None
removes the property (`meta.patch_properties.unset`). Bulk jobs hold at most 10,000 profiles and
5 MB; running jobs are polled together (`connectors.klaviyo.jobs`), then each job's import errors are
matched back to the records sent, and only records without an error are reported ok. A job refused
as a whole because of one entry is bisected so the good entries still land.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from connectors.base import EnsureReport, FieldSpec, PushTarget, RecordResult
from connectors.http import HttpClient, RecordRejected
from connectors.klaviyo.api import JSONAPI, redact
from connectors.klaviyo.jobs import BULK_PATH, JobWatcher, PollPolicy
from connectors.paginate import CursorLinkPaginator, PageRequest, dig, iterate_pages
from connectors.records import FieldUpdate, FieldValue

PREFIX = "espd_"
MAX_JOB_PROFILES = 10_000
MAX_JOB_BYTES = 5 * 1024 * 1024 - 4096  # the envelope around the entries fits in the margin
MAX_PROFILE_BYTES = 100 * 1024
_ENTRY_POINTER = re.compile(r"^/data/attributes/profiles/data/(\d+)(/|$)")
Outcome = str | None  # None: the vendor took the record; otherwise why it did not
# A job body around entries encoded once each: `{"data":{"type":…,"attributes":{"profiles":{"data":[…]}}}}`.
_JOB_HEAD = b'{"data":{"type":"profile-bulk-import-job","attributes":{"profiles":{"data":['
_JOB_TAIL = b"]}}}}"


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


def render(update: FieldUpdate) -> tuple[dict[str, Any], bytes]:
    """The profile entry for one update and its JSON, encoded once for the size check, the job body
    and the single upsert alike (raises ValueError naming the field that cannot be sent)."""
    properties: dict[str, FieldValue] = {}
    unset: list[str] = []
    for name, value in update.values.items():
        if not name.startswith(PREFIX):
            raise ValueError(f"field {name!r} is outside the {PREFIX!r} prefix espd may write")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"field {name!r} is not a finite number")
        if value is None:
            unset.append(name)
        else:
            properties[name] = value  # dates arrive as ISO strings, which Klaviyo detects as dates
    entry: dict[str, Any] = {
        "type": "profile",
        "id": update.customer_vendor_id,
        "attributes": {"properties": properties} if properties else {},
    }
    if unset:
        entry["meta"] = {"patch_properties": {"unset": unset}}
    encoded = _encode(entry)
    if len(encoded) > MAX_PROFILE_BYTES:
        raise ValueError("the profile entry exceeds Klaviyo's 100 KB limit")
    return entry, encoded


class KlaviyoPushTarget(PushTarget):
    max_batch_size: ClassVar[int] = MAX_JOB_PROFILES

    def __init__(
        self, client: HttpClient, *, dry_run: bool, small_batch: int = 100, poll: PollPolicy | None = None
    ) -> None:
        self.client = client
        self.dry_run = dry_run
        self.small_batch = small_batch
        self.jobs = JobWatcher(client, poll or PollPolicy())

    async def list_fields(self) -> dict[str, str]:
        """Klaviyo properties have no definitions to list: any key can be written as it comes."""
        return {}

    async def ensure_fields(self, specs: Sequence[FieldSpec]) -> EnsureReport:
        """Nothing to create on Klaviyo; a name outside the espd_ prefix is refused before any push."""
        outside = [spec.name for spec in specs if not spec.name.startswith(PREFIX)]
        if outside:
            raise ValueError(f"klaviyo: fields {outside} must start with {PREFIX!r}")
        return EnsureReport(created=(), existing=tuple(spec.name for spec in specs))

    async def push(self, batch: Sequence[FieldUpdate]) -> list[RecordResult]:
        outcomes: list[Outcome] = [None] * len(batch)
        entries: dict[int, dict[str, Any]] = {}
        encoded: dict[int, bytes] = {}
        for index, update in enumerate(batch):
            try:
                entries[index], encoded[index] = render(update)
            except ValueError as exc:
                outcomes[index] = str(exc)
        if entries and not self.dry_run:
            sent = await (self._singles if len(entries) < self.small_batch else self._bulk)(entries, encoded)
            for index, outcome in sent.items():
                outcomes[index] = outcome
        return [
            RecordResult(update.customer_vendor_id, outcome is None, outcome)
            for update, outcome in zip(batch, outcomes, strict=True)
        ]

    # ----- small deltas: one synchronous upsert per profile --------------------------------------

    async def _singles(
        self, entries: dict[int, dict[str, Any]], encoded: dict[int, bytes]
    ) -> dict[int, Outcome]:
        indexes = list(entries)
        outcomes = await asyncio.gather(*(self._single(encoded[i]) for i in indexes))
        return dict(zip(indexes, outcomes, strict=True))

    async def _single(self, encoded: bytes) -> Outcome:
        try:
            await self.client.request(
                "POST",
                "/api/profile-import",
                limit_key="create_or_update_profile",
                content=b'{"data":' + encoded + b"}",
                headers={"content-type": JSONAPI},
            )
        except RecordRejected as exc:
            return exc.verdict.message
        return None

    # ----- batches: bulk import jobs -------------------------------------------------------------

    async def _bulk(
        self, entries: dict[int, dict[str, Any]], encoded: dict[int, bytes]
    ) -> dict[int, Outcome]:
        chunks = list(_chunks(list(entries.items()), encoded))
        results = await asyncio.gather(*(self._job(chunk, encoded) for chunk in chunks))
        return {index: outcome for result in results for index, outcome in result.items()}

    async def _job(
        self, chunk: list[tuple[int, dict[str, Any]]], encoded: dict[int, bytes]
    ) -> dict[int, Outcome]:
        """Run one job; a job refused as a whole is split in two until the bad entry stands alone."""
        profiles = b",".join(encoded[index] for index, _ in chunk)
        try:
            response = await self.client.request(
                "POST",
                BULK_PATH,
                limit_key="bulk_import_profiles",
                idempotent=False,
                content=_JOB_HEAD + profiles + _JOB_TAIL,
                headers={"content-type": JSONAPI},
            )
        except RecordRejected as exc:
            if len(chunk) == 1:
                return {chunk[0][0]: exc.verdict.message}
            half = len(chunk) // 2
            parts = await asyncio.gather(self._job(chunk[:half], encoded), self._job(chunk[half:], encoded))
            return {**parts[0], **parts[1]}
        job = dig(response.json(), ("data",)) or {}
        attributes = await self.jobs.wait_for(str(job.get("id")), dig(job, ("attributes", "created_at")))
        job_id = str(job.get("id"))
        if attributes.get("status") == "cancelled":
            return {index: "the bulk import job was cancelled" for index, _ in chunk}
        failed = int(attributes.get("failed_count") or 0)
        errors = await self._import_errors(job_id) if failed else []
        return match_errors(chunk, errors, failed)

    async def _import_errors(self, job_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        pages = iterate_pages(
            self.client,
            PageRequest(f"{BULK_PATH}/{job_id}/import-errors", {"page[size]": "100"}),
            CursorLinkPaginator(),
            limit_key="get_bulk_import_errors",
            count_records=lambda b: len(b.get("data") or []),
        )
        async for _request, body in pages:
            found += [e.get("attributes") or {} for e in body.get("data") or [] if isinstance(e, dict)]
        return found


def _chunks(items: list[tuple[int, dict[str, Any]]], encoded: dict[int, bytes]) -> Any:
    """Consecutive runs of entries within the job's profile count and byte limits."""
    chunk: list[tuple[int, dict[str, Any]]] = []
    size = 0
    for item in items:
        entry_size = len(encoded[item[0]]) + 1
        if chunk and (len(chunk) >= MAX_JOB_PROFILES or size + entry_size > MAX_JOB_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += entry_size
    if chunk:
        yield chunk


def _identifiers(payload: Any) -> set[str]:
    """Identifier values an import error's `original_payload` carries (entry or attributes shape)."""
    if not isinstance(payload, dict):
        return set()
    attributes = payload.get("attributes") if isinstance(payload.get("attributes"), dict) else payload
    values = {payload.get("id"), *(attributes.get(k) for k in ("email", "phone_number", "external_id"))}
    return {str(v).lower() for v in values if isinstance(v, str) and v}


def _matching_positions(chunk: list[tuple[int, dict[str, Any]]], error: dict[str, Any]) -> list[int]:
    """Which entries of the job an import error is about: by identifiers in its original payload,
    else by its JSON pointer when the payload agrees, else by an exact payload match."""
    payload = error.get("original_payload")
    ids = _identifiers(payload)
    if ids:
        by_id = [pos for pos, (_, entry) in enumerate(chunk) if str(entry["id"]).lower() in ids]
        if by_id:
            return by_id
    sent = [entry for _, entry in chunk]
    same = [pos for pos, entry in enumerate(sent) if payload in (entry, entry.get("attributes"))]
    found = _ENTRY_POINTER.match(str(dig(error, ("source", "pointer")) or ""))
    if found and int(found[1]) < len(chunk) and (payload is None or int(found[1]) in same):
        return [int(found[1])]
    return same


def match_errors(
    chunk: list[tuple[int, dict[str, Any]]], errors: list[dict[str, Any]], failed: int
) -> dict[int, Outcome]:
    """Per-record outcomes of a completed job; when its errors cannot all be placed, nothing is ok."""
    outcomes: dict[int, Outcome] = {index: None for index, _ in chunk}
    placed = 0
    for error in errors:
        positions = _matching_positions(chunk, error)
        placed += bool(positions)
        for pos in positions:
            outcomes[chunk[pos][0]] = redact(f"{error.get('code', 'error')}: {error.get('detail', '')}")
    if placed < max(failed, len(errors)):
        reason = f"the job reported {failed} failures that could not all be matched to profiles"
        return {index: outcome or reason for index, outcome in outcomes.items()}
    return outcomes
