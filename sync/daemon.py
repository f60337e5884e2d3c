"""`espd run`: the long-running service around the cycle.

APScheduler 3 runs the cycle every `schedule.pull_every_minutes` (coalesced, never two at once),
a heartbeat that feeds /healthz and systemd's watchdog, and a daily purge of raw vendor JSON past
`store.raw_retention_days` (retention holds without an operator's cron running `espd purge`).
Each cycle runs on its own event loop in the scheduler's worker thread; SIGTERM/SIGINT cancel it
there, which is safe because every page and every push batch commits on its own, and the process
exits well inside 30 s. SIGHUP reloads the config: an invalid file is logged and the running config
is kept.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, select, text
from sqlmodel import Session

from sync import tables
from sync.config import Config, ConfigError, ShopifyConfig, load_config
from sync.dashboard import create_app, next_run_of
from sync.erasure import erasing_connectors, pending_counts
from sync.health import HealthServer, HealthState
from sync.logs import log_event, register_secrets_in, run_context
from sync.metrics import Metrics
from sync.notify import SystemdNotifier
from sync.pipeline import CycleReport, run_cycle
from sync.privacy import erasure_key, purge
from sync.webhooks import ShopifyComplianceWebhook

log = logging.getLogger("espd.daemon")
HEARTBEAT_SECONDS = 15.0
STOP_GRACE_SECONDS = 25.0


class MetricsSink:
    """Turns the HTTP layer's events into Prometheus metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def __call__(self, event: str, **fields: Any) -> None:
        connector = str(fields.get("connector", "unknown"))
        if event == "http_request":
            self.metrics.count_request(connector, fields.get("status", "unknown"))
        elif event == "rate_limit_wait":
            self.metrics.add_rate_limit_wait(connector, float(fields.get("seconds", 0.0)))


def record_model_quality(metrics: Metrics, engine: Engine) -> None:
    """Export the promoted models' holdout metrics (of the kind that won) as gauges."""
    with Session(engine) as session:
        rows = session.execute(select(tables.Model).where(tables.Model.promoted.is_(True))).scalars()
        for row in rows:
            holdout = (row.metrics or {}).get("holdout") or {}
            for metric, value in (holdout.get(row.kind) or {}).items():
                if isinstance(value, int | float) and math.isfinite(value):
                    metrics.set_model_quality(row.output, metric, float(value))


def record_erasure_metrics(metrics: Metrics, engine: Engine) -> None:
    for connector, count in pending_counts(engine).items():
        metrics.set_erasures_pending(connector, count)


def record_cycle_metrics(metrics: Metrics, report: CycleReport) -> None:
    for pull in report.pulls:
        metrics.count_records(pull.connector, pull.stream, "pulled", pull.pulled)
        metrics.count_records(pull.connector, pull.stream, "skipped", pull.skipped)
        if pull.error is None:
            metrics.mark_success(pull.connector, "pull")
    for push in report.pushes:
        for outcome in ("pushed", "unchanged", "rejected", "parked", "withheld", "cleared"):
            metrics.count_records(push.destination, "fields", outcome, getattr(push, outcome))
        if push.error is None:
            metrics.mark_success(push.destination, "push")


class Daemon:
    def __init__(self, config_path: Path, config: Config, engine: Engine) -> None:
        self.config_path = config_path
        self.config = config
        self.engine = engine
        self.metrics = Metrics()
        self.state = HealthState()
        self.notifier = SystemdNotifier()
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self._stop = threading.Event()
        self._cycle_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[CycleReport] | None = None

    # The cycle job -------------------------------------------------------------------------
    def run_cycle_job(self) -> None:
        if self._stop.is_set():
            return
        with self._cycle_lock, run_context() as run_id, self.metrics.cycle():
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._task = loop.create_task(
                    run_cycle(self.config, self.engine, sink=MetricsSink(self.metrics))
                )
                report = loop.run_until_complete(self._task)
            except asyncio.CancelledError:
                log_event(log, "cycle_cancelled", run=run_id)
                self.state.cycle_finished(False, "cancelled by shutdown")
                return
            except Exception as exc:
                log.exception("event=cycle_crashed run=%s", run_id)
                self.state.cycle_finished(False, type(exc).__name__)
                raise
            finally:
                self._task = None
                self._loop = None
                loop.close()
            record_cycle_metrics(self.metrics, report)
            record_model_quality(self.metrics, self.engine)
            record_erasure_metrics(self.metrics, self.engine)
            self.state.cycle_finished(report.ok, "; ".join(report.errors) or None)
            if report.ok:
                self.metrics.mark_success("espd", "cycle")

    def purge_raw_json(self) -> None:
        """Drop raw vendor JSON whose retention ran out (scheduled daily, first at start)."""
        purged = purge(self.engine)
        log_event(log, "raw_json_purged", **purged)

    def heartbeat(self) -> None:
        self.state.beat()
        self.notifier.watchdog()

    # Signals ----------------------------------------------------------------------------------
    def request_stop(self, signum: int, _frame: FrameType | None = None) -> None:
        log_event(log, "stopping", signal=signal.Signals(signum).name)
        self.state.stopping()
        self.notifier.stopping()
        self._stop.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)

    def reload(self, _signum: int, _frame: FrameType | None = None) -> None:
        self.notifier.reloading()
        try:
            fresh = load_config(self.config_path)
        except ConfigError as exc:
            log_event(
                log,
                "reload_rejected",
                level=logging.ERROR,
                problems=len(exc.issues),
                first=str(exc.issues[0]),
            )
        else:
            register_secrets_in(fresh)
            self.config = fresh
            self._schedule()
            log_event(log, "config_reloaded", connectors=len(fresh.connectors))
        self.notifier.ready()

    # Life cycle -------------------------------------------------------------------------------
    def _schedule(self) -> None:
        self.scheduler.add_job(
            self.run_cycle_job,
            "interval",
            minutes=self.config.schedule.pull_every_minutes,
            id="cycle",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=self.config.schedule.misfire_grace_seconds,
            next_run_time=datetime.now(UTC),
        )

    def _add_webhooks(self, server: HealthServer) -> None:
        """Shopify compliance webhooks, for each Shopify connector that has a webhook secret."""
        for name, connector in self.config.connectors.items():
            if isinstance(connector, ShopifyConfig) and connector.webhook_secret is not None:
                webhook = ShopifyComplianceWebhook(
                    name,
                    [connector.webhook_secret.get_secret_value().encode()],
                    self.engine,
                    erasure_key(self.config.state_dir),
                    self.config.state_dir,
                    erase_to=lambda: erasing_connectors(self.config),
                )
                server.add_route(
                    f"/webhooks/shopify/{name}", webhook.__call__, methods=("POST",), public=True
                )

    def _store_ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def serve(self, install_signals: Callable[[Daemon], None] | None = None) -> None:
        """Run until a stop signal; blocks the calling (main) thread."""
        server_config = self.config.server
        token = server_config.token.get_secret_value() if server_config.token else None
        server = HealthServer(
            state=self.state,
            metrics=self.metrics,
            store_ping=self._store_ping,
            host=server_config.bind,
            port=server_config.port,
            token=token,
        ).start()
        self._add_webhooks(server)
        record_erasure_metrics(self.metrics, self.engine)  # what is still owed, before the first cycle
        if server_config.dashboard:
            server.mount(
                "/dashboard",
                create_app(self.engine, lambda: self.config, next_run_of(self.scheduler, "cycle")),
            )
        log_event(log, "serving", url=server.url)
        (install_signals or install_default_signals)(self)
        interval = min(self.notifier.watchdog_interval() or HEARTBEAT_SECONDS, HEARTBEAT_SECONDS)
        self.scheduler.add_job(
            self.heartbeat, "interval", seconds=interval, id="heartbeat", next_run_time=datetime.now(UTC)
        )
        self.scheduler.add_job(
            self.purge_raw_json,
            "interval",
            days=1,
            id="purge",
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        self._schedule()
        self.scheduler.start()
        self.notifier.ready()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.scheduler.shutdown(wait=False)
            self._cycle_lock.acquire(timeout=STOP_GRACE_SECONDS)
            server.stop()
            log_event(log, "stopped")


def install_default_signals(daemon: Daemon) -> None:
    signal.signal(signal.SIGTERM, daemon.request_stop)
    signal.signal(signal.SIGINT, daemon.request_stop)
    signal.signal(signal.SIGHUP, daemon.reload)
