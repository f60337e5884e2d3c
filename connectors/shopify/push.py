"""espd's fields as typed customer metafields in the `espd` namespace (notes §3).

Metafields never touch email marketing consent. Values go through `metafieldsSet`, at most 25 entries
per call, packing whole customers into each call (a customer's fields land together or not at all),
with a few calls in flight so the cost bucket, not the round trip, sets the pace.
The call is atomic, so one bad value rejects the call: the customers the `userErrors` point at
(`elementIndex`, else the index in `field`) are marked failed and the rest is sent again; when no
entry is named, the group is split in halves until the bad record is alone. A value of None removes
the metafield (`metafieldsDelete`). In a dry run nothing but queries is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from connectors.base import EnsureReport, FieldSpec, FieldType, PushTarget, RecordResult
from connectors.http import FatalApiError, Outcome, RecordRejected, Verdict, in_flight
from connectors.limits import (
    SHOPIFY_CALLS_IN_FLIGHT,
    SHOPIFY_DEFINITIONS_PER_OWNER,
    SHOPIFY_METAFIELDS_PER_CALL,
)
from connectors.records import FieldUpdate
from connectors.shopify import documents
from connectors.shopify.api import ShopifyApi, user_errors
from connectors.shopify.render import RenderError, check_key, render

log = logging.getLogger("espd.connectors.shopify")

TYPES = {
    FieldType.NUMBER: "number_decimal",
    FieldType.INTEGER: "number_integer",
    FieldType.DATE: "date",
    FieldType.TEXT: "single_line_text_field",
    FieldType.CATEGORY: "single_line_text_field",
    FieldType.BOOLEAN: "boolean",
}
Entry = dict[str, str]


class ShopifyPushTarget(PushTarget):
    max_batch_size: ClassVar[int] = 250

    def __init__(self, api: ShopifyApi, name: str, dry_run: bool) -> None:
        self.api = api
        self.name = name
        self.dry_run = dry_run
        self._types: dict[str, str] | None = None

    async def list_fields(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        after = None
        while True:
            data = await self.api.call(documents.DEFINITIONS, {"key": None, "after": after})
            connection = data["metafieldDefinitions"]
            fields.update({n["key"]: n["type"]["name"] for n in connection["nodes"]})
            info = connection["pageInfo"]
            if not info["hasNextPage"]:
                break
            after = info["endCursor"]
        self._types = dict(fields)
        return fields

    async def ensure_fields(self, specs: Sequence[FieldSpec]) -> EnsureReport:
        for spec in specs:
            check_key(spec.name)
        existing = await self.list_fields()
        missing = [s for s in specs if s.name not in existing]
        if len(existing) + len(missing) > SHOPIFY_DEFINITIONS_PER_OWNER:
            raise FatalApiError(
                self.name,
                Verdict(
                    Outcome.FATAL,
                    message=f"creating {len(missing)} metafield definitions would pass Shopify's limit of "
                    f"{SHOPIFY_DEFINITIONS_PER_OWNER} per owner type ({len(existing)} exist)",
                ),
            )
        retyped = [s.name for s in specs if s.name in existing and existing[s.name] != TYPES[s.type]]
        if retyped:
            log.warning("event=field_type_kept connector=%s fields=%s", self.name, ",".join(retyped))
        created = []
        for spec in missing:
            if self.dry_run or await self._create(spec):
                created.append(spec.name)
            existing[spec.name] = TYPES[spec.type]  # in a dry run: what would exist, to render values
        self._types = existing
        return EnsureReport(tuple(created), tuple(s.name for s in specs if s.name not in created))

    async def _create(self, spec: FieldSpec) -> bool:
        """Create one definition; False when it already existed (TAKEN, confirmed by a read)."""
        definition = {
            "name": spec.name.replace("_", " "),
            "namespace": documents.NAMESPACE,
            "key": spec.name,
            "type": TYPES[spec.type],
            "ownerType": "CUSTOMER",
            "description": spec.description or None,
        }
        try:
            await self.api.call(documents.DEFINITION_CREATE, {"definition": definition})
            return True
        except RecordRejected as exc:
            codes = {e.get("code") for e in _user_errors(exc)}
            if codes != {"TAKEN"}:
                raise
        data = await self.api.call(documents.DEFINITIONS, {"key": spec.name, "after": None})
        if not data["metafieldDefinitions"]["nodes"]:
            raise FatalApiError(
                self.name, Verdict(Outcome.FATAL, message=f"definition {spec.name} TAKEN but not found")
            )
        return False

    async def push(self, batch: Sequence[FieldUpdate]) -> list[RecordResult]:
        types = self._types if self._types is not None else await self.list_fields()
        results: dict[int, RecordResult] = {}
        sets: list[tuple[int, list[Entry]]] = []
        deletes: list[tuple[int, list[Entry]]] = []
        for position, update in enumerate(batch):
            try:
                entries, removals = _entries(update, types)
            except RenderError as exc:
                results[position] = RecordResult(update.customer_vendor_id, False, str(exc))
                continue
            sets.append((position, entries))
            deletes.append((position, removals))
        if self.dry_run:
            log.info("event=dry_run_push connector=%s customers=%d", self.name, len(sets))
        else:
            await in_flight(
                _packed([s for s in sets if s[1]]), lambda g: self._set(g, results), SHOPIFY_CALLS_IN_FLIGHT
            )
            removals = _packed([d for d in deletes if d[1] and d[0] not in results])
            await in_flight(removals, lambda g: self._delete(g, results), SHOPIFY_CALLS_IN_FLIGHT)
        return [
            results.get(i, RecordResult(update.customer_vendor_id, True)) for i, update in enumerate(batch)
        ]

    async def _set(self, group: list[tuple[int, list[Entry]]], results: dict[int, RecordResult]) -> None:
        """One atomic call; on userErrors drop the named customers (or halve) and send the rest."""
        flat = [(position, entry) for position, entries in group for entry in entries]
        try:
            await self.api.call(documents.METAFIELDS_SET, {"metafields": [e for _, e in flat]})
            return
        except RecordRejected as exc:
            problems = _user_errors(exc)
        named = {flat[i][0]: p for p in problems if (i := _element(p)) is not None and i < len(flat)}
        if len(group) == 1:
            position = group[0][0]
            results[position] = RecordResult(group[0][1][0]["ownerId"], False, _describe(problems))
            return
        if named:
            for position, problem in named.items():
                owner = next(entries[0]["ownerId"] for p, entries in group if p == position)
                results[position] = RecordResult(owner, False, _describe([problem]))
            rest = [item for item in group if item[0] not in named]
            parts = [rest] if rest else []
        else:
            middle = len(group) // 2
            parts = [group[:middle], group[middle:]]
        for part in parts:
            await self._set(part, results)

    async def _delete(self, group: list[tuple[int, list[Entry]]], results: dict[int, RecordResult]) -> None:
        """Removals are not atomic: a failure marks every customer of the call."""
        flat = [entry for _, entries in group for entry in entries]
        try:
            await self.api.call(documents.METAFIELDS_DELETE, {"metafields": flat})
        except RecordRejected as exc:
            for position, entries in group:
                results[position] = RecordResult(entries[0]["ownerId"], False, _describe(_user_errors(exc)))


def _entries(update: FieldUpdate, types: dict[str, str]) -> tuple[list[Entry], list[Entry]]:
    owner = update.customer_vendor_id
    if not owner.startswith("gid://shopify/Customer/"):
        raise RenderError(f"customer id {owner!r} is not a Shopify customer GID")
    sets: list[Entry] = []
    removals: list[Entry] = []
    for key, value in sorted(update.values.items()):
        if key not in types:
            raise RenderError(f"field {key!r} has no metafield definition in namespace espd")
        entry = {"ownerId": owner, "namespace": documents.NAMESPACE, "key": key}
        if value is None:
            removals.append(entry)
        else:
            sets.append({**entry, "type": types[key], "value": render(types[key], value, key)})
    if len(sets) > SHOPIFY_METAFIELDS_PER_CALL:
        raise RenderError(
            f"{len(sets)} fields for one customer exceed {SHOPIFY_METAFIELDS_PER_CALL} per call"
        )
    return sets, removals


def _packed(items: list[tuple[int, list[Entry]]]) -> list[list[tuple[int, list[Entry]]]]:
    """Whole customers per call, at most 25 entries per call."""
    groups: list[list[tuple[int, list[Entry]]]] = []
    size = SHOPIFY_METAFIELDS_PER_CALL + 1
    for item in items:
        if size + len(item[1]) > SHOPIFY_METAFIELDS_PER_CALL:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += len(item[1])
    return groups


def _user_errors(exc: RecordRejected) -> list[dict[str, Any]]:
    body = exc.response.json() if exc.response is not None else {}
    return user_errors(body.get("data"))


def _element(problem: dict[str, Any]) -> int | None:
    """The failing entry's index: `elementIndex`, else the number in `field` (metafields.N.value)."""
    index = problem.get("elementIndex")
    if isinstance(index, int):
        return index
    field = problem.get("field") or []
    if len(field) >= 2 and field[0] == "metafields" and str(field[1]).isdigit():
        return int(field[1])
    return None


def _describe(problems: list[dict[str, Any]]) -> str:
    return "; ".join(f"{p.get('code')}: {p.get('message')}" for p in problems) or "rejected"
