"""Work leases: espd processes sharing one PostgreSQL store never work the same stream at once.

A lease is a row of `work_leases` (one per unit of work, e.g. `shop/orders:pull` or `klaviyo:push`)
naming its owner and when it expires. Claiming reads the row `FOR UPDATE SKIP LOCKED`: a process
that finds the row locked by another claimant, or held by a live owner, simply moves on to other
work instead of queueing behind it. The row lock lives only for the claim's short transaction; the
lease itself is the row's content, so no transaction stays open while a stream is pulled.

A lease expires after its TTL unless its holder renews it, which `LeaseBook.hold` does in the
background while the work runs: a killed or hung holder frees its streams one TTL later (a daemon
restarted on the same state directory takes them back at once, see `daemon_owner`). Times come
from the database's clock on PostgreSQL, so daemons on machines whose clocks disagree still agree
on expiry. SQLite has no row locks (SQLAlchemy renders no FOR UPDATE there), but it serialises
writers and espd runs there as one process, so the same code is trivially correct.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from sync import tables
from sync.config import Config
from sync.store import dialect_insert, session_scope

log = logging.getLogger("espd.leases")

DEFAULT_TTL = timedelta(minutes=5)
_PROCESS_TOKEN = uuid.uuid4().hex[:8]


def process_owner(label: str | None = None) -> str:
    """A lease owner unique to this process: `label` (default: the host name), pid and a random token.

    For callers with no state directory (tests, benchmarks); daemons use `daemon_owner`.
    """
    return f"{label or socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}"


def daemon_owner(label: str | None, state_dir: Path) -> str:
    """A daemon's lease owner: `label` (default: the host name) and a digest of its state directory.

    The instance lock (sync/lock.py) lets one live process use a state directory, so the pair names
    one daemon at a time, and the same name survives a restart: a daemon killed mid-pull takes its
    streams back at once when it starts again, instead of waiting out its own lease's TTL.
    """
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    return f"{label or socket.gethostname()}:{digest}"


def lease_book(engine: Engine, config: Config) -> LeaseBook:
    """The daemon's leases as its config names and times them."""
    owner = daemon_owner(config.store.shard_owner, config.state_dir)
    return LeaseBook(engine, owner, timedelta(seconds=config.store.lease_ttl_seconds))


def pull_key(connector: str, stream: str) -> str:
    return f"{connector}/{stream}:pull"


def push_key(destination: str) -> str:
    return f"{destination}:push"


def erase_key(connector: str) -> str:
    return f"{connector}:erase"


def _now(session: Session) -> datetime:
    """The database's clock on PostgreSQL (one clock for every daemon), the local one on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(select(func.clock_timestamp())).scalar_one()
    return datetime.now(UTC)


@dataclass
class Lease:
    """A held lease; `lost` turns true if a renewal found it taken (the holder stalled past its TTL)."""

    key: str
    owner: str
    expires_at: datetime
    lost: bool = field(default=False)


@dataclass(frozen=True)
class LeaseBook:
    """Claims, renews and releases leases for one owner in one store."""

    engine: Engine
    owner: str = field(default_factory=process_owner)
    ttl: timedelta = DEFAULT_TTL

    def claim(self, key: str) -> Lease | None:
        """The lease on `key` if it is free, expired or already ours; None if another owner holds it."""
        with session_scope(self.engine) as session:
            insert = dialect_insert(session.get_bind().dialect.name)
            session.execute(
                insert(tables.WorkLease)
                .values(key=key, owner=None, expires_at=datetime(1970, 1, 1, tzinfo=UTC))
                .on_conflict_do_nothing(index_elements=["key"])
            )
        with session_scope(self.engine) as session:
            now = _now(session)
            free = or_(
                tables.WorkLease.owner.is_(None),
                tables.WorkLease.owner == self.owner,
                tables.WorkLease.expires_at <= now,
            )
            row = session.execute(
                select(tables.WorkLease.key)
                .where(tables.WorkLease.key == key, free)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return None
            expires = now + self.ttl
            taken = session.execute(
                update(tables.WorkLease)
                .where(tables.WorkLease.key == key, free)
                .values(owner=self.owner, acquired_at=now, expires_at=expires)
            )
            if taken.rowcount != 1:  # another SQLite writer got there between our read and write
                return None
        return Lease(key, self.owner, expires)

    def renew(self, lease: Lease) -> bool:
        """Push the expiry one TTL on; False (and `lease.lost`) if the lease is no longer ours."""
        with session_scope(self.engine) as session:
            expires = _now(session) + self.ttl
            renewed = session.execute(
                update(tables.WorkLease)
                .where(tables.WorkLease.key == lease.key, tables.WorkLease.owner == self.owner)
                .values(expires_at=expires)
            )
        if renewed.rowcount == 1:
            lease.expires_at = expires
            return True
        lease.lost = True
        return False

    def release(self, lease: Lease) -> None:
        """Free the lease at once (only if still ours) so another daemon need not wait for the TTL."""
        with session_scope(self.engine) as session:
            session.execute(
                update(tables.WorkLease)
                .where(tables.WorkLease.key == lease.key, tables.WorkLease.owner == self.owner)
                .values(owner=None, expires_at=_now(session))
            )

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[Lease | None]:
        """Claim `key` for the block, renewing every third of the TTL; yields None if it is held elsewhere."""
        lease = await asyncio.to_thread(self.claim, key)
        if lease is None:
            log.info("event=lease_held_elsewhere key=%s", key)
            yield None
            return
        renewer = asyncio.create_task(self._keep_renewed(lease))
        try:
            yield lease
        finally:
            renewer.cancel()
            with suppress(asyncio.CancelledError):
                await renewer
            await asyncio.to_thread(self.release, lease)

    async def _keep_renewed(self, lease: Lease) -> None:
        while True:
            await asyncio.sleep(self.ttl.total_seconds() / 3)
            try:
                renewed = await asyncio.to_thread(self.renew, lease)
            except SQLAlchemyError as exc:  # a passing outage: the lease still has two thirds to live
                log.warning("event=lease_renewal_failed key=%s error=%s", lease.key, type(exc).__name__)
                continue
            if not renewed:
                log.error("event=lease_lost key=%s owner=%s", lease.key, lease.owner)
                return
