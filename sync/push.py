"""The push stage: write changed field values to one destination, confirming each batch in the ledger.

Every customer the destination already holds gets every field (espd never creates contacts; a
customer the engine did not score gets the fields' explicit unknown values) unless they did not
consent (sync/consent.py): then nothing is sent but, once, unknown values over what espd pushed
before. Only
values whose fingerprint differs from what the destination last confirmed. Each batch is confirmed
in its own transaction as soon as the vendor answered, so a crash re-sends at most one batch.
A dry run asks the connector for its verdicts (it sends no write) and leaves the ledger untouched.
A destination is pushed under a lease (sync/leases.py): one another espd is pushing is left to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlmodel import Session

from connectors.base import Connector, FieldSpec
from connectors.http import ApiError
from connectors.records import FieldUpdate, FieldValue
from sync import tables
from sync.leases import LeaseBook, push_key
from sync.ledger import PushLedger
from sync.store import session_scope, upsert

log = logging.getLogger("espd.push")


@dataclass
class PushReport:
    destination: str
    candidates: int = 0
    pushed: int = 0
    unchanged: int = 0
    rejected: int = 0
    parked: int = 0
    fields_created: int = 0
    withheld: int = 0  # held people who did not consent: sent nothing but a one-off reset
    cleared: int = 0  # of those, people whose earlier-pushed values were reset to unknown
    error: str | None = None
    held_elsewhere: bool = False  # another espd process held the destination's lease: not pushed here


def _identities(engine: Engine, source: str) -> dict[int, tuple[str, str | None]]:
    """profile id -> (vendor id, email) of every customer the destination holds."""
    with Session(engine) as session:
        rows = session.execute(
            select(tables.Identity.profile_id, tables.Identity.vendor_id, tables.Identity.email).where(
                tables.Identity.source == source, tables.Identity.profile_id.is_not(None)
            )
        )
        return {pid: (vid, email) for pid, vid, email in rows}


def _ever_pushed(engine: Engine, destination: str) -> set[int]:
    """The customers this destination has confirmed values for at least once."""
    with Session(engine) as session:
        rows = session.execute(
            select(tables.PushLedger.profile_id).where(
                tables.PushLedger.destination == destination, tables.PushLedger.fingerprint.is_not(None)
            )
        )
        return set(rows.scalars())


def _remember_fields(engine: Engine, destination: str, specs: Sequence[FieldSpec], now: datetime) -> None:
    with session_scope(engine) as session:
        upsert(
            session,
            tables.FieldDefinition,
            [
                {"destination": destination, "name": s.name, "vendor_type": s.type.value, "created_at": now}
                for s in specs
            ],
            update_columns=("vendor_type",),
        )


async def push_destination(
    connector: Connector,
    engine: Engine,
    values_for: Callable[[int], Mapping[str, FieldValue]],
    specs: Sequence[FieldSpec],
    volatile: Sequence[str],
    now: datetime,
    withheld: Collection[int] = (),
    leases: LeaseBook | None = None,
) -> PushReport:
    """Push changed values to everyone the destination holds, but the `withheld` (no consent): they
    only get their earlier-pushed values reset, once (`values_for` gives them the unknown values).

    The push runs under the destination's lease (`leases` default to this process's, with the default
    TTL), so two espd processes sharing a store never push to one destination at once."""
    book = leases or LeaseBook(engine)
    async with book.hold(push_key(connector.name)) as lease:
        if lease is None:
            return PushReport(connector.name, held_elsewhere=True)
        report = PushReport(connector.name)
        target = connector.push_target()
        if target is None:
            report.error = f"{connector.name}: this platform does not receive fields"
            return report
        held = _identities(engine, connector.name)
        withheld_here = held.keys() & set(withheld)
        to_clear = withheld_here & _ever_pushed(engine, connector.name)
        report.withheld = len(withheld_here)
        wanted = {pid: values_for(pid) for pid in held if pid not in withheld_here or pid in to_clear}
        report.candidates = len(wanted)
        with Session(engine) as session:
            changed = PushLedger(session, connector.name, volatile).changed(wanted)
        report.unchanged = len(wanted) - len(changed)
        if not changed:
            return report
        try:
            ensured = await target.ensure_fields(specs)
            report.fields_created = len(ensured.created)
            if not connector.dry_run:
                _remember_fields(engine, connector.name, specs, now)
            pending = sorted(changed)
            for start in range(0, len(pending), target.max_batch_size):
                if lease.lost:  # the batches confirmed so far stay confirmed; the new holder sends the rest
                    report.error = f"{connector.name}: lease lost to another espd; stopped pushing"
                    break
                batch_ids = pending[start : start + target.max_batch_size]
                batch = [
                    FieldUpdate(
                        destination=connector.name,
                        customer_vendor_id=held[pid][0],
                        email=held[pid][1],
                        values=dict(changed[pid]),
                    )
                    for pid in batch_ids
                ]
                results = await target.push(batch)
                confirmed = _record_results(
                    engine, connector, report, batch_ids, changed, results, volatile, now
                )
                report.cleared += len(confirmed & to_clear)
        except ApiError as exc:
            report.error = str(exc)
            log.error("event=push_failed destination=%s error=%s", connector.name, exc)
        return report


def _record_results(
    engine: Engine,
    connector: Connector,
    report: PushReport,
    batch_ids: Sequence[int],
    changed: Mapping[int, Mapping[str, FieldValue]],
    results: Sequence,
    volatile: Sequence[str],
    now: datetime,
) -> set[int]:
    """Confirm what the vendor accepted, count rejections; return the confirmed profile ids."""
    if len(results) != len(batch_ids):
        raise RuntimeError(f"{connector.name}: {len(results)} results for a batch of {len(batch_ids)}")
    confirmed = {pid: changed[pid] for pid, r in zip(batch_ids, results, strict=True) if r.ok}
    errors = {pid: r.error or "rejected" for pid, r in zip(batch_ids, results, strict=True) if not r.ok}
    report.pushed += len(confirmed)
    report.rejected += len(errors)
    if connector.dry_run:
        return set(confirmed)
    with session_scope(engine) as session:
        ledger = PushLedger(session, connector.name, volatile)
        ledger.confirm(confirmed, now)
        parked = ledger.reject(errors)
    report.parked += len(parked)
    for pid in parked:
        log.warning(
            "event=record_parked destination=%s profile_id=%d reason=%s", connector.name, pid, errors[pid]
        )
    return set(confirmed)
