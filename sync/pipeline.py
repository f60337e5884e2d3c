"""One cycle: pull every enabled stream → score → push changed fields → record the run.

Each stage is idempotent, so a cycle interrupted anywhere is simply run again: pulls resume from
their checkpoints, scoring reuses scores whose input did not change, pushes send only what the
ledger has not seen confirmed. The run row records what happened, counts and errors, for
`espd status`, the metrics and the dashboard.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, select
from sqlmodel import Session

from connectors.base import Connector, EventSink
from connectors.records import FieldValue
from sync import tables
from sync.audit import audit_run
from sync.config import Config
from sync.consent import unconsented_profile_ids
from sync.erasure import ErasureReport, drain, targets_of
from sync.field_table import VOLATILE_STAMPS, OutputField
from sync.fields import field_specs, field_values, outputs_for
from sync.ingest import IngestPolicy
from sync.leases import LeaseBook, lease_book
from sync.privacy import erasure_key
from sync.pull import StreamReport, pull_all
from sync.push import PushReport, push_destination
from sync.scoring import ScoreReport, score_store
from sync.storable import minimization_for
from sync.store import session_scope
from sync.wiring import build_connector

log = logging.getLogger("espd.pipeline")


@dataclass
class CycleReport:
    run_id: int
    started_at: datetime
    pulls: list[StreamReport] = field(default_factory=list)
    score: ScoreReport | None = None
    pushes: list[PushReport] = field(default_factory=list)
    erasures: list[ErasureReport] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)
    withheld: frozenset[int] = frozenset()  # customers left out of scoring and pushes: no consent

    @property
    def errors(self) -> list[str]:
        found = [r.error for r in self.pulls if r.error] + [p.error for p in self.pushes if p.error]
        return [e for e in found if e]

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        return {
            "pulled": sum(r.pulled for r in self.pulls),
            "pulled_unchanged": sum(r.unchanged for r in self.pulls),
            "skipped_malformed": sum(r.skipped for r in self.pulls),
            "scored": self.score.scored if self.score else 0,
            "pushed": sum(p.pushed for p in self.pushes),
            "unchanged": sum(p.unchanged for p in self.pushes),
            "rejected": sum(p.rejected for p in self.pushes),
            "parked": sum(p.parked for p in self.pushes),
            "fields_created": sum(p.fields_created for p in self.pushes),
            "no_consent": len(self.withheld),
            "withheld_no_consent": sum(p.withheld for p in self.pushes),
            "cleared_no_consent": sum(p.cleared for p in self.pushes),
            "erasures_settled": sum(e.erased + e.not_found + e.refused for e in self.erasures),
            "erasures_pending": sum(e.pending for e in self.erasures),
        }


def _start_run(engine: Engine, started: datetime) -> int:
    with session_scope(engine) as session:
        run = tables.Run(kind="cycle", started_at=started, status="running")
        session.add(run)
        session.flush()
        return int(run.id or 0)


def _finish_run(engine: Engine, report: CycleReport) -> None:
    with session_scope(engine) as session:
        run = session.get(tables.Run, report.run_id)
        if run is None:
            return
        run.finished_at = datetime.now(UTC)
        run.status = "ok" if report.ok else "failed"
        run.counts = {**report.counts(), **{f"seconds_{k}": round(v, 3) for k, v in report.durations.items()}}
        run.errors = report.errors


async def run_cycle(
    config: Config, engine: Engine, *, dry_run: bool = False, sink: EventSink | None = None
) -> CycleReport:
    started = datetime.now(UTC)
    report = CycleReport(_start_run(engine, started), started)
    enabled = {name: c for name, c in config.connectors.items() if c.enabled}
    connectors: list[Connector] = [
        build_connector(n, c, dry_run=dry_run, sink=sink) for n, c in enabled.items()
    ]
    types = {name: c.type for name, c in enabled.items()}
    leases = lease_book(engine, config)  # one book for the cycle's erasures, pulls and pushes
    try:
        if not dry_run:  # owed deletions first: they must not wait behind a long pull
            clock = time.monotonic()
            targets = targets_of(config, connectors)
            report.erasures = await drain(engine, erasure_key(config.state_dir), targets, leases=leases)
            report.durations["erase"] = time.monotonic() - clock

        clock = time.monotonic()
        policy = IngestPolicy(
            raw_retention=timedelta(days=config.store.raw_retention_days),
            now=started,
            erasure_key=erasure_key(config.state_dir),
            minimization=minimization_for(config),
        )
        report.pulls = await pull_all(connectors, engine, policy, started, leases)
        report.durations["pull"] = time.monotonic() - clock

        clock = time.monotonic()
        if not config.privacy.score_without_consent:
            report.withheld = unconsented_profile_ids(engine)
        report.score = score_store(
            engine,
            types,
            config.engine,
            started,
            config.segments,
            config.schedule,
            report.withheld,
            inputs_changed=_inputs_changed(engine, report),
        )
        audit_run(engine, report.run_id, report.score, config)
        report.durations["score"] = time.monotonic() - clock
        for message in report.score.messages:
            log.info("event=scoring_note message=%s", message)

        clock = time.monotonic()
        report.pushes = await _push_all(
            config, engine, connectors, report.score, started, report.withheld, leases
        )
        report.durations["push"] = time.monotonic() - clock
    finally:
        for connector in connectors:
            await connector.aclose()
        _finish_run(engine, report)
    log.info(
        "event=cycle_finished run=%d %s",
        report.run_id,
        " ".join(f"{k}={v}" for k, v in report.counts().items()),
    )
    return report


def _inputs_changed(engine: Engine, report: CycleReport) -> bool:
    """Whether the store may hold input the last scoring did not see.

    Only a pull writes the engine's input rows (an erasure deletes a person's scores with their data),
    so nothing changed when this cycle's pull wrote nothing and the run before it completed, scoring
    included; a crashed or failed run may have pulled without scoring, so after one everything is read.
    """
    if any(r.pulled for r in report.pulls):
        return True
    with Session(engine) as session:
        previous = session.execute(
            select(tables.Run.status)
            .where(tables.Run.kind == "cycle", tables.Run.id < report.run_id)
            .order_by(tables.Run.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    return previous != "ok"


async def _push_all(
    config: Config,
    engine: Engine,
    connectors: list[Connector],
    score: ScoreReport,
    now: datetime,
    withheld: frozenset[int],
    leases: LeaseBook,
) -> list[PushReport]:
    reports = []
    for connector in connectors:
        settings = config.connectors[connector.name]
        if not settings.push:
            continue
        outputs = outputs_for(config, connector.name)
        specs = field_specs(config.fields.prefix, outputs)

        values_for = functools.partial(
            _values_for, config.fields.prefix, outputs, score, now.date(), withheld
        )
        reports.append(
            await push_destination(
                connector, engine, values_for, specs, _volatile(config), now, withheld=withheld, leases=leases
            )
        )
    return reports


def _values_for(
    prefix: str,
    outputs: list[OutputField],
    score: ScoreReport,
    day: date,
    withheld: frozenset[int],
    profile_id: int,
) -> dict[str, FieldValue]:
    scores = None if profile_id in withheld else score.scores.get(profile_id)
    return field_values(prefix, outputs, scores, day, score.version)


def _volatile(config: Config) -> list[str]:
    """Stamps that change with every scoring without changing what a customer's fields mean."""
    return [config.fields.prefix + stamp for stamp in (*VOLATILE_STAMPS, "model_version")]


def summary(report: CycleReport) -> dict[str, object]:
    """A JSON-friendly summary (for `espd once --json` and logs)."""
    return {
        "run_id": report.run_id,
        "ok": report.ok,
        "counts": report.counts(),
        "pushes": [asdict(p) for p in report.pushes],
        "errors": report.errors,
        "durations": {k: round(v, 2) for k, v in report.durations.items()},
    }
