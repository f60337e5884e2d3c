"""Erasure propagation: the durable queue of deletions espd owes the other platforms, and its drain.

`espd forget` and the Shopify redact webhook erase a person locally (sync/privacy.py) and `enqueue`
one request per platform whose config says `erase: true`. `drain` asks each platform's
`ErasureTarget` to delete, at most `per_cycle` people per platform per call, and writes every answer
to the store as it comes: a crash or a vendor outage leaves the rest `pending` for the next drain
(the daemon drains before every pull), and a request already answered is never sent again.

The queue must hold the address until the vendor answered, yet a stolen database must not reveal
whom espd was asked to erase: the address is sealed with AES-GCM under a key derived (HKDF) from the
install's key file in the state directory, bound to its row (connector and keyed hash) so a sealed
value cannot be moved to another row. A settled row drops the sealed address.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, case, func, select
from sqlmodel import Session

from connectors.base import Connector, ErasureOutcome, ErasureTarget
from connectors.http import ApiError
from connectors.records import normalize_email
from sync import tables
from sync.config import Config
from sync.leases import LeaseBook, erase_key
from sync.logs import log_event, redact
from sync.privacy import email_hash
from sync.store import dialect_insert, session_scope
from sync.wiring import build_connector

log = logging.getLogger("espd.erasure")
PENDING = "pending"
SETTLED = tuple(outcome.value for outcome in ErasureOutcome)
CONCURRENCY = 8  # requests in flight per platform; the connector's limiter does the pacing
_NONCE_BYTES = 12


def erasing_connectors(config: Config) -> list[str]:
    """The enabled connectors the operator asked to delete people too (`erase: true`)."""
    return [name for name, c in config.connectors.items() if c.enabled and c.erase]


class Sealer:
    """AES-GCM for queued addresses, keyed from the install key (never the key itself)."""

    def __init__(self, install_key: bytes) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"espd erasure queue v1")
        self._aead = AESGCM(derived.derive(install_key))

    def seal(self, email: str, connector: str, hashed: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, email.encode(), f"{connector}:{hashed}".encode())

    def unseal(self, sealed: bytes, connector: str, hashed: str) -> str:
        nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        return self._aead.decrypt(nonce, body, f"{connector}:{hashed}".encode()).decode()


def enqueue(
    engine: Engine,
    install_key: bytes,
    email: str,
    connectors: Sequence[str],
    reason: str,
    now: datetime | None = None,
) -> str:
    """Owe one erasure per platform (again, if it was settled before); return the keyed hash."""
    normalized = normalize_email(email)
    hashed = email_hash(install_key, normalized)
    if not connectors:
        return hashed
    sealer = Sealer(install_key)
    moment = now or datetime.now(UTC)
    rows = [
        {
            "email_hash": hashed,
            "connector": name,
            "sealed_email": sealer.seal(normalized, name, hashed),
            "status": PENDING,
            "attempts": 0,
            "last_error": None,
            "reason": reason[:64],
            "requested_at": moment,
            "updated_at": moment,
        }
        for name in connectors
    ]
    with session_scope(engine) as session:
        table = tables.ErasureRequest.__table__  # type: ignore[attr-defined]
        statement = dialect_insert(session.get_bind().dialect.name)(table)
        updates = {c: statement.excluded[c] for c in rows[0] if c not in ("email_hash", "connector")}
        session.execute(
            statement.on_conflict_do_update(index_elements=["email_hash", "connector"], set_=updates), rows
        )
    return hashed


@dataclass
class ErasureReport:
    """One platform's share of one drain."""

    connector: str
    erased: int = 0
    not_found: int = 0
    refused: int = 0
    failed: int = 0
    pending: int = 0  # still owed after this drain
    error: str | None = None
    held_elsewhere: bool = False  # another espd process was draining this platform: nothing sent here


def pending_counts(engine: Engine) -> dict[str, int]:
    """Requests still owed, per connector that has any row at all (0 included, for the gauge)."""
    with Session(engine) as session:
        rows = session.execute(
            select(
                tables.ErasureRequest.connector,
                func.sum(case((tables.ErasureRequest.status == PENDING, 1), else_=0)),
            ).group_by(tables.ErasureRequest.connector)
        )
        return {connector: int(n or 0) for connector, n in rows}


def _due(engine: Engine, connector: str, limit: int, only: str | None) -> list[tables.ErasureRequest]:
    query = select(tables.ErasureRequest).where(
        tables.ErasureRequest.connector == connector, tables.ErasureRequest.status == PENDING
    )
    if only is not None:
        query = query.where(tables.ErasureRequest.email_hash == only)
    query = query.order_by(tables.ErasureRequest.requested_at, tables.ErasureRequest.email_hash).limit(limit)
    with Session(engine) as session:
        return list(session.execute(query).scalars())


def _record(engine: Engine, row: tables.ErasureRequest, status: str, error: str | None) -> None:
    """Write one answer at once: a crash later never re-sends what a vendor already settled."""
    with session_scope(engine) as session:
        stored = session.get(tables.ErasureRequest, (row.email_hash, row.connector))
        if stored is None or stored.status != PENDING:
            return
        stored.status = status
        stored.attempts += 1
        stored.last_error = redact(error)[:1024] if error else None
        stored.updated_at = datetime.now(UTC)
        if status != PENDING:
            stored.sealed_email = None


async def drain_one(
    engine: Engine, sealer: Sealer, connector: str, target: ErasureTarget, only: str | None = None
) -> ErasureReport:
    """Send up to `target.per_cycle` of this platform's pending erasures. The first failure the HTTP
    layer could not retry away stops the platform for this drain: an outage is not worth hammering."""
    report = ErasureReport(connector)
    stop = asyncio.Event()
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(row: tables.ErasureRequest) -> None:
        async with slots:
            if stop.is_set():
                return
            try:
                email = sealer.unseal(row.sealed_email or b"", connector, row.email_hash)
            except (InvalidTag, ValueError):  # a foreign key file or a damaged row
                report.failed += 1
                _record(engine, row, PENDING, "sealed address unreadable with this install's key")
                return
            try:
                result = await target.erase(email)
            except ApiError as exc:
                report.failed += 1
                report.error = report.error or str(exc)
                _record(engine, row, PENDING, str(exc))
                stop.set()
                return
            setattr(report, result.outcome.value, getattr(report, result.outcome.value) + 1)
            _record(engine, row, result.outcome.value, result.detail or None)

    rows = _due(engine, connector, target.per_cycle, only)
    await asyncio.gather(*(one(row) for row in rows))
    report.pending = pending_counts(engine).get(connector, 0)
    log_event(
        log,
        "erasures_drained",
        connector=connector,
        erased=report.erased,
        not_found=report.not_found,
        refused=report.refused,
        failed=report.failed,
        pending=report.pending,
    )
    return report


async def drain(
    engine: Engine,
    install_key: bytes,
    targets: Mapping[str, ErasureTarget],
    only: str | None = None,
    leases: LeaseBook | None = None,
) -> list[ErasureReport]:
    """Drain every platform side by side (each has its own limits); `only` restricts to one person.

    With `leases` (the daemon's), a platform is drained under its erase lease, so several daemons
    sharing one store never send the same deletions twice at once."""
    sealer = Sealer(install_key)

    async def one(name: str, target: ErasureTarget) -> ErasureReport:
        if leases is None:
            return await drain_one(engine, sealer, name, target, only)
        async with leases.hold(erase_key(name)) as lease:
            if lease is None:
                return ErasureReport(name, held_elsewhere=True)
            return await drain_one(engine, sealer, name, target, only)

    return list(await asyncio.gather(*(one(name, target) for name, target in targets.items())))


def targets_of(config: Config, connectors: Sequence[Connector]) -> dict[str, ErasureTarget]:
    """The erasure targets of the built connectors whose config says `erase: true`."""
    targets = {}
    for connector in connectors:
        settings = config.connectors.get(connector.name)
        target = connector.erasure_target() if settings is not None and settings.erase else None
        if target is not None:
            targets[connector.name] = target
    return targets


async def propagate(
    config: Config, engine: Engine, install_key: bytes, only: str | None = None
) -> list[ErasureReport]:
    """Build the erasing connectors, drain (one person's or every) pending request, close them."""
    connectors = [build_connector(name, config.connectors[name]) for name in erasing_connectors(config)]
    try:
        return await drain(engine, install_key, targets_of(config, connectors), only)
    finally:
        for connector in connectors:
            await connector.aclose()
