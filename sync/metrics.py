"""The daemon's Prometheus metrics, in a registry of their own.

A dedicated `CollectorRegistry` keeps tests independent (each builds its own `Metrics`) and keeps
library metrics from the default registry out of espd's `/metrics`. Every label value is checked
against a short lower-snake-case shape: labels name connectors, streams, stages, outputs and statuses,
never a customer, so an email, a vendor id or a token handed over by mistake is refused loudly instead
of being published (and exploding the series count).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

RECORD_OUTCOMES = frozenset(
    {"pulled", "pushed", "skipped", "unchanged", "rejected", "parked", "withheld", "cleared"}
)
STAGES = frozenset({"pull", "identity", "features", "train", "score", "segment", "push", "cycle"})
CYCLE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_STATUS = re.compile(r"^(?:[1-5][0-9]{2}|[a-z][a-z_]{0,31})$")
_ID_LIKE = re.compile(r"[0-9]{5,}")


class Metrics:
    """Every metric the daemon publishes, with recording methods that validate their labels."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "espd_requests", "HTTP requests to vendor APIs", ["connector", "status"], registry=r
        )
        self.rate_limit_wait = Counter(
            "espd_rate_limit_wait_seconds",
            "Seconds spent waiting for vendor rate limits",
            ["connector"],
            registry=r,
        )
        self.records = Counter(
            "espd_records", "Records by outcome", ["connector", "stream", "outcome"], registry=r
        )
        self.last_success = Gauge(
            "espd_last_success_timestamp_seconds",
            "Unix time of the last successful stage per connector",
            ["connector", "stage"],
            registry=r,
        )
        self.model_quality = Gauge(
            "espd_model_quality", "Holdout quality of the promoted model", ["output", "metric"], registry=r
        )
        self.cycle_duration = Histogram(
            "espd_cycle_duration_seconds",
            "Duration of full pull-score-push cycles",
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.cycles = Counter("espd_cycles", "Finished cycles by outcome", ["outcome"], registry=r)
        self.cycle_in_progress = Gauge("espd_cycle_in_progress", "1 while a cycle runs", registry=r)
        self.erasures_pending = Gauge(
            "espd_erasures_pending", "Erasure requests a platform still owes", ["connector"], registry=r
        )

    def count_request(self, connector: str, status: int | str) -> None:
        """One vendor request answered with HTTP `status` (or a short word: `timeout`, `connect_error`)."""
        self.requests.labels(_name(connector, "connector"), _status(status)).inc()

    def add_rate_limit_wait(self, connector: str, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"rate-limit wait for {connector!r} cannot be negative ({seconds})")
        self.rate_limit_wait.labels(_name(connector, "connector")).inc(seconds)

    def count_records(self, connector: str, stream: str, outcome: str, n: int = 1) -> None:
        """`n` records of `stream` ended as `outcome` (one of RECORD_OUTCOMES)."""
        if outcome not in RECORD_OUTCOMES:
            raise ValueError(f"record outcome {outcome!r} is not one of {sorted(RECORD_OUTCOMES)}")
        if n < 0:
            raise ValueError(f"record count for {connector}/{stream} cannot be negative ({n})")
        self.records.labels(_name(connector, "connector"), _name(stream, "stream"), outcome).inc(n)

    def mark_success(self, connector: str, stage: str, when: float | None = None) -> None:
        """`stage` finished successfully for `connector` (use connector="all" for whole-run stages)."""
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r} is not one of {sorted(STAGES)}")
        self.last_success.labels(_name(connector, "connector"), stage).set(
            time.time() if when is None else when
        )

    def set_model_quality(self, output: str, metric: str, value: float) -> None:
        """The promoted model for `output` scored `value` on `metric` (auc, brier, mae, ...)."""
        self.model_quality.labels(_name(output, "output"), _name(metric, "metric")).set(value)

    def set_erasures_pending(self, connector: str, count: int) -> None:
        """`count` erasure requests are still queued for `connector` (sync/erasure.py)."""
        if count < 0:
            raise ValueError(f"pending erasures for {connector!r} cannot be negative ({count})")
        self.erasures_pending.labels(_name(connector, "connector")).set(count)

    @contextmanager
    def cycle(self) -> Iterator[None]:
        """Time one cycle, flag it in progress, and count it as ok or failed (the error propagates)."""
        self.cycle_in_progress.set(1)
        started = time.monotonic()
        outcome = "failed"
        try:
            yield
            outcome = "ok"
        finally:
            self.cycle_duration.observe(time.monotonic() - started)
            self.cycles.labels(outcome).inc()
            self.cycle_in_progress.set(0)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition of every metric and its content type, for `/metrics`."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value) or _ID_LIKE.search(value):
        raise ValueError(
            f"metric label {what}={value!r} must be a short lower_snake_case name, not an id, email or secret"
        )
    return value


def _status(status: int | str) -> str:
    text = str(status)
    if not _STATUS.match(text):
        raise ValueError(f"metric label status={text!r} must be an HTTP status code or a short word")
    return text
