"""Erasure, data export and retention: what a shop owes its customers under GDPR-style rules.

`forget` deletes one person everywhere in the store (profile, identities, orders and their lines,
events, scores, ledger rows) and keeps only a keyed hash of the email as a tombstone, so a later pull
of a stale vendor page cannot re-create them (`erased_emails` is what ingest checks). The key lives
in a 0600 file in the state directory, not in the database: a stolen database alone cannot test
emails against the tombstones. `export` gathers everything espd holds about one person. `purge`
drops raw vendor JSON past its retention date.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, null, select, tuple_, update
from sqlmodel import Session

from connectors.records import normalize_email
from sync import tables
from sync.store import session_scope

KEY_FILE = "erasure.key"


def erasure_key(state_dir: Path) -> bytes:
    """The install's secret hashing key, created on first use (0600 in a 0700 directory)."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, from its first byte (no window at the umask's mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def email_hash(key: bytes, email: str) -> str:
    return hmac.new(key, normalize_email(email).encode(), hashlib.sha256).hexdigest()


def erased_emails(session: Session, key: bytes, emails: Iterable[str]) -> set[str]:
    """Which of these (normalized) emails belong to erased people."""
    by_hash = {email_hash(key, e): e for e in set(emails)}
    found: set[str] = set()
    hashes = sorted(by_hash)
    for start in range(0, len(hashes), 500):
        rows = session.execute(
            select(tables.Erasure.email_hash).where(
                tables.Erasure.email_hash.in_(hashes[start : start + 500])
            )
        )
        found.update(by_hash[h] for h in rows.scalars())
    return found


def _profile_id(session: Session, email: str) -> int | None:
    return session.execute(
        select(tables.Profile.id).where(tables.Profile.email == email)
    ).scalar_one_or_none()


def forget(
    engine: Engine, key: bytes, email: str, reason: str, now: datetime | None = None
) -> dict[str, int]:
    """Erase one person from every table; return how many rows went from each."""
    normalized = normalize_email(email)
    deleted: dict[str, int] = {}
    with session_scope(engine) as session:
        pid = _profile_id(session, normalized)
        if pid is not None:
            orders = select(tables.Order.source, tables.Order.vendor_id).where(tables.Order.profile_id == pid)
            deleted["order_lines"] = session.execute(
                delete(tables.OrderLine).where(
                    tuple_(tables.OrderLine.source, tables.OrderLine.order_vendor_id).in_(orders)
                )
            ).rowcount
            for table in (tables.Order, tables.Event, tables.Score, tables.PushLedger, tables.Identity):
                statement = delete(table).where(table.profile_id == pid)  # type: ignore[attr-defined]
                deleted[table.__tablename__] = session.execute(statement).rowcount
            deleted["profiles"] = session.execute(
                delete(tables.Profile).where(tables.Profile.id == pid)
            ).rowcount
        stray = delete(tables.Identity).where(tables.Identity.email == normalized)
        deleted["identities"] = deleted.get("identities", 0) + session.execute(stray).rowcount
        tombstone = tables.Erasure(
            email_hash=email_hash(key, normalized), erased_at=now or datetime.now(UTC), reason=reason[:64]
        )
        session.merge(tombstone)
    return deleted


def _rows(session: Session, table: Any, condition: Any) -> list[dict[str, Any]]:
    return [row.model_dump(mode="json") for row in session.execute(select(table).where(condition)).scalars()]


def export(engine: Engine, email: str) -> dict[str, Any]:
    """Everything the store holds about one person (a data-subject access request)."""
    normalized = normalize_email(email)
    with Session(engine) as session:
        pid = _profile_id(session, normalized)
        if pid is None:
            return {"email": normalized, "found": False}
        orders = _rows(session, tables.Order, tables.Order.profile_id == pid)
        order_keys = [(o["source"], o["vendor_id"]) for o in orders]
        lines = (
            _rows(
                session,
                tables.OrderLine,
                tuple_(tables.OrderLine.source, tables.OrderLine.order_vendor_id).in_(order_keys),
            )
            if order_keys
            else []
        )
        return {
            "email": normalized,
            "found": True,
            "profile": _rows(session, tables.Profile, tables.Profile.id == pid)[0],
            "identities": _rows(session, tables.Identity, tables.Identity.profile_id == pid),
            "orders": orders,
            "order_lines": lines,
            "events": _rows(session, tables.Event, tables.Event.profile_id == pid),
            "scores": _rows(session, tables.Score, tables.Score.profile_id == pid),
            "pushed": _rows(session, tables.PushLedger, tables.PushLedger.profile_id == pid),
        }


def purge(engine: Engine, now: datetime | None = None) -> dict[str, int]:
    """Drop raw vendor JSON whose retention ran out; the fields the engine uses stay."""
    moment = now or datetime.now(UTC)
    purged = {}
    with session_scope(engine) as session:
        for table in (tables.Identity, tables.Order):
            statement = (
                update(table)
                .where(table.raw_expires_at < moment)  # type: ignore[attr-defined]
                .values(raw=null(), raw_expires_at=None)
            )
            purged[table.__tablename__] = session.execute(statement).rowcount
    return purged
