"""The Overview page's figures: each connector's state, its last good pull and push, the last runs.

The runs table holds counts for the whole cycle and the errors as `"<connector>: <outcome> ..."`
strings (connectors.http.ApiError), so a connector's state is read from the errors of the last
finished run that name it. Per-connector record counts are not stored per run; the page shows the
cycle totals and, per connector, what the store holds from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from sync import tables
from sync.config import Config
from sync.logs import redact

RUNS_SHOWN = 10
RUN_COLUMNS = ("pulled", "skipped_malformed", "scored", "pushed", "unchanged", "rejected", "parked")


@dataclass(frozen=True)
class ConnectorState:
    name: str
    type: str
    enabled: bool
    push: bool
    state: str  # ok, rate-limited, auth failed, failed, no runs yet, disabled
    errors: list[str]
    last_clean_run: datetime | None
    last_page_stored: datetime | None
    last_push_confirmed: datetime | None
    identities: int
    orders: int


@dataclass(frozen=True)
class RunRow:
    id: int
    kind: str
    status: str
    started_at: datetime | None
    seconds: float | None
    counts: dict[str, int]
    errors: list[str]


def state_of(errors: Sequence[str]) -> str:
    """ok / rate-limited / auth failed / failed, from one connector's errors in a run."""
    if not errors:
        return "ok"
    if any("auth_failed" in e for e in errors):
        return "auth failed"
    if any("rate_limited" in e for e in errors):
        return "rate-limited"
    return "failed"


def errors_of(run: tables.Run, connector: str) -> list[str]:
    return [redact(e) for e in (run.errors or []) if e.startswith(f"{connector}:")]


def recent_runs(engine: Engine, limit: int = RUNS_SHOWN) -> list[tables.Run]:
    with Session(engine) as session:
        query = select(tables.Run).order_by(tables.Run.id.desc()).limit(limit)
        return list(session.execute(query).scalars())


def run_rows(runs: Sequence[tables.Run]) -> list[RunRow]:
    rows = []
    for run in runs:
        seconds = (
            (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
        )
        counts = {c: int((run.counts or {}).get(c, 0)) for c in RUN_COLUMNS}
        rows.append(
            RunRow(
                int(run.id or 0),
                run.kind,
                run.status,
                run.started_at,
                seconds,
                counts,
                list(map(redact, run.errors or [])),
            )
        )
    return rows


def _per_source(engine: Engine, column: object, table: type) -> dict[str, int]:
    with Session(engine) as session:
        return dict(session.execute(select(column, func.count()).select_from(table).group_by(column)).all())


def _latest(engine: Engine, key: object, stamp: object) -> dict[str, datetime]:
    with Session(engine) as session:
        return {k: v for k, v in session.execute(select(key, func.max(stamp)).group_by(key)).all() if v}


def connector_states(engine: Engine, config: Config, runs: Sequence[tables.Run]) -> list[ConnectorState]:
    finished = [r for r in runs if r.finished_at is not None]
    pages = _latest(engine, tables.SyncState.connector, tables.SyncState.updated_at)
    pushes = _latest(engine, tables.PushLedger.destination, tables.PushLedger.confirmed_at)
    identities = _per_source(engine, tables.Identity.source, tables.Identity)
    orders = _per_source(engine, tables.Order.source, tables.Order)
    states = []
    for name, connector in config.connectors.items():
        errors = errors_of(finished[0], name) if finished else []
        clean = next((r.finished_at for r in finished if not errors_of(r, name)), None)
        state = state_of(errors) if finished else "no runs yet"
        states.append(
            ConnectorState(
                name=name,
                type=connector.type,
                enabled=connector.enabled,
                push=connector.push,
                state=state if connector.enabled else "disabled",
                errors=errors,
                last_clean_run=clean,
                last_page_stored=pages.get(name),
                last_push_confirmed=pushes.get(name),
                identities=int(identities.get(name, 0)),
                orders=int(orders.get(name, 0)),
            )
        )
    return states


def totals(rows: Sequence[RunRow]) -> dict[str, int]:
    """Each count summed over the runs shown."""
    return {c: sum(r.counts[c] for r in rows) for c in RUN_COLUMNS}
