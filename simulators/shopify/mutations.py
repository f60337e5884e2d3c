"""Write mutations espd uses: metafield definitions, metafieldsSet/Delete, tagsAdd/tagsRemove.

Semantics from the 2026-04 descriptions (notes §3, §9.8): metafieldsSet takes at most 25 entries and
is atomic (any userError → nothing persisted and `metafields: null`), checks each value against its
type, honours `compareDigest`, and needs `type` when no definition exists. Every successful write bumps
the owner's `updatedAt`, so a client's next incremental pull sees its own echo.
"""

from __future__ import annotations

import re
from typing import Any

from simulators.shopify.context import Context, parse_gid
from simulators.shopify.metafield_types import CHECKS, check_value
from simulators.shopify.objects import compare_digest
from simulators.shopify.state import (
    CustomerRecord,
    DefinitionRecord,
    MetafieldRecord,
    resolve_namespace,
)

MAX_METAFIELDS_PER_CALL = 25
MAX_PINNED = 20
_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
RESERVED_NAMESPACES = {"shopify", "shopify_standard", "custom_fields"}


def _error(field: list[str], message: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "field": field,
        "message": message,
        "code": code,
        "elementIndex": None,
        "elementKey": None,
        **extra,
    }


def _key_problem(key: str) -> tuple[str, str] | None:
    if len(key) < 2:
        return "TOO_SHORT", "Key is too short (minimum is 2 characters)."
    if len(key) > 64:
        return "TOO_LONG", "Key is too long (maximum is 64 characters)."
    if not _KEY.match(key):
        return "INVALID_CHARACTER", "Key contains one or more invalid characters."
    return None


def definition_create(root: Any, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    ctx.require("write_customers", "metafieldDefinitionCreate")
    spec = args["definition"]
    raw_namespace = spec.get("namespace")
    namespace = resolve_namespace(raw_namespace)
    errors = _definition_errors(ctx, spec, raw_namespace, namespace)
    if errors:
        return {"createdDefinition": None, "userErrors": errors}
    state = ctx.state
    with state.lock:
        pinned = [d.pinned_position for d in state.definitions.values() if d.pinned_position is not None]
        record = DefinitionRecord(
            id=state.next_id(),
            name=spec["name"],
            namespace=namespace,
            key=spec["key"],
            type=spec["type"],
            owner_type=spec["ownerType"],
            description=spec.get("description"),
            pinned_position=len(pinned) + 1 if spec.get("pin") else None,
        )
        state.definitions[record.id] = record
        state.changed()
    return {"createdDefinition": record, "userErrors": []}


def _definition_errors(ctx: Context, spec: dict[str, Any], raw_namespace: str | None, namespace: str) -> list:
    field = ["definition"]
    problem = _key_problem(spec["key"])
    if problem:
        return [_error([*field, "key"], problem[1], problem[0])]
    if (
        raw_namespace is not None
        and not raw_namespace.startswith("$app")
        and not 3 <= len(raw_namespace) <= 255
    ):
        return [_error([*field, "namespace"], "Namespace must be 3 to 255 characters long.", "INVALID")]
    if namespace in RESERVED_NAMESPACES:
        return [_error([*field, "namespace"], "Namespace is reserved.", "RESERVED_NAMESPACE_KEY")]
    if spec["type"] not in CHECKS:
        return [_error([*field, "type"], f"Type name {spec['type']} is not a valid type.", "INCLUSION")]
    if (spec.get("access") or {}).get("admin") is not None and not namespace.startswith("app--"):
        message = "Admin access can only be specified on metafield definitions that have an app namespace."
        return [_error([*field, "access", "admin"], message, "ADMIN_ACCESS_INPUT_NOT_ALLOWED")]
    if ctx.state.definition_for(spec["ownerType"], namespace, spec["key"]) is not None:
        owner = spec["ownerType"].capitalize()
        message = f"Key is in use for {owner} metafields on the '{namespace}' namespace."
        return [_error([*field, "key"], message, "TAKEN")]
    pinned = sum(1 for d in ctx.state.definitions.values() if d.pinned_position is not None)
    if spec.get("pin") and pinned >= MAX_PINNED:
        return [_error([*field], "Limit of 20 pinned definitions reached.", "PINNED_LIMIT_REACHED")]
    return []


def _owner(ctx: Context, gid: str) -> CustomerRecord | None:
    parsed = parse_gid(gid, "Customer")
    return ctx.state.customer(parsed[1]) if parsed else None


def metafields_set(root: Any, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    ctx.require("write_customers", "metafieldsSet")
    entries = args["metafields"]
    if len(entries) > MAX_METAFIELDS_PER_CALL:
        message = f"Exceeded the maximum metafields input limit of {MAX_METAFIELDS_PER_CALL}."
        return {"metafields": None, "userErrors": [_error(["metafields"], message, "LESS_THAN_OR_EQUAL_TO")]}
    with ctx.state.lock:
        errors: list[dict[str, Any]] = []
        planned: list[tuple[CustomerRecord, str, str, str, str]] = []
        for index, entry in enumerate(entries):
            outcome = _plan_entry(ctx, index, entry)
            if isinstance(outcome, dict):
                errors.append(outcome)
            else:
                planned.append(outcome)
        if errors:
            return {"metafields": None, "userErrors": errors}
        written = [_write(ctx, *plan) for plan in planned]
        ctx.state.changed()
    return {"metafields": written, "userErrors": []}


def _plan_entry(ctx: Context, index: int, entry: dict[str, Any]) -> dict[str, Any] | tuple:
    """Check one entry; an error dict, or (owner, namespace, key, value, type) to write."""
    where = ["metafields", str(index)]
    owner = _owner(ctx, entry["ownerId"])
    if owner is None:
        return _error([*where, "ownerId"], "Owner does not exist.", "INVALID_VALUE")
    namespace, key, value = resolve_namespace(entry.get("namespace")), entry["key"], entry["value"]
    problem = _key_problem(key)
    if problem:
        return _error([*where, "key"], problem[1], problem[0])
    definition = ctx.state.definition_for("CUSTOMER", namespace, key)
    existing = ctx.state.metafields.get(owner.gid, {}).get((namespace, key))
    type_name = entry.get("type")
    if definition is not None and type_name is not None and type_name != definition.type:
        message = f"Type '{type_name}' does not match the definition's type '{definition.type}'."
        return _error([*where, "type"], message, "INVALID_TYPE")
    type_name = type_name or (definition.type if definition else None)
    if type_name is None:
        return _error([*where, "type"], "Type can't be blank when no metafield definition exists.", "BLANK")
    if type_name not in CHECKS:
        return _error([*where, "type"], f"Type '{type_name}' is not a valid metafield type.", "INVALID_TYPE")
    problem_text = check_value(type_name, value)
    if problem_text is None and (
        owner.gid in ctx.faults.reject_records or str(owner.id) in ctx.faults.reject_records
    ):
        problem_text = "Injected: value rejected for this owner."
    if problem_text is not None:
        return _error([*where, "value"], problem_text, "INVALID_VALUE")
    if "compareDigest" in entry:
        expected = entry["compareDigest"]
        current = compare_digest(existing) if existing is not None else None
        if expected != current:
            message = (
                "The resource has been updated since it was loaded. Retry with an updated `compareDigest`."
            )
            return _error([*where, "compareDigest"], message, "STALE_OBJECT")
    return owner, namespace, key, value, type_name


def _write(ctx: Context, owner: CustomerRecord, namespace: str, key: str, value: str, type_name: str) -> Any:
    now = ctx.state.now()
    slot = ctx.state.metafields.setdefault(owner.gid, {})
    record = slot.get((namespace, key))
    if record is None:
        record = MetafieldRecord(ctx.state.next_id(), owner.gid, namespace, key, value, type_name, now, now)
        slot[(namespace, key)] = record
    else:
        record.value, record.type, record.updated_at = value, type_name, now
    owner.updated_at = now
    return record


def metafields_delete(root: Any, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    ctx.require("write_customers", "metafieldsDelete")
    deleted: list[dict[str, str] | None] = []
    with ctx.state.lock:
        for entry in args["metafields"]:
            owner = _owner(ctx, entry["ownerId"])
            namespace = resolve_namespace(entry["namespace"])
            slot = ctx.state.metafields.get(owner.gid, {}) if owner else {}
            if owner is None or slot.pop((namespace, entry["key"]), None) is None:
                deleted.append(None)
                continue
            owner.updated_at = ctx.state.now()
            deleted.append({"ownerId": owner.gid, "namespace": namespace, "key": entry["key"]})
        ctx.state.changed()
    return {"deletedMetafields": deleted, "userErrors": []}


def _split_tags(tags: list[str]) -> list[str]:
    """`tags` takes a list, or one comma-separated string, or a mix."""
    return [t.strip() for item in tags for t in item.split(",") if t.strip()]


def _tags_change(ctx: Context, args: dict[str, Any], add: bool) -> dict[str, Any]:
    ctx.require("write_customers", "tagsAdd" if add else "tagsRemove")
    owner = _owner(ctx, args["id"])
    if owner is None:
        return {"node": None, "userErrors": [{"field": ["id"], "message": "Resource not found"}]}
    tags = _split_tags(args["tags"])
    too_long = [t for t in tags if len(t) > 255]
    if too_long:
        return {
            "node": None,
            "userErrors": [{"field": ["tags"], "message": "Tags must be 255 characters or less"}],
        }
    with ctx.state.lock:
        lowered = {t.lower() for t in tags}
        if add:
            known = {t.lower() for t in owner.tags}
            owner.tags.extend(t for t in dict.fromkeys(tags) if t.lower() not in known)
        else:
            owner.tags[:] = [t for t in owner.tags if t.lower() not in lowered]
        owner.updated_at = ctx.state.now()
        ctx.state.changed()
    return {"node": owner, "userErrors": []}


MUTATIONS: dict[str, Any] = {
    "metafieldDefinitionCreate": definition_create,
    "metafieldsSet": metafields_set,
    "metafieldsDelete": metafields_delete,
    "tagsAdd": lambda root, ctx, args: _tags_change(ctx, args, add=True),
    "tagsRemove": lambda root, ctx, args: _tags_change(ctx, args, add=False),
}
