"""`espd run` as a real process: health endpoints, a second instance refused, SIGHUP, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from sync import tables
from sync.daemon import record_model_quality
from sync.lock import EXIT_LOCKED
from sync.metrics import Metrics
from sync.store import session_scope

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "espd.yaml"
    path.write_text(
        f"state_dir: {tmp_path / 'state'}\nserver:\n  port: {port}\nschedule:\n  pull_every_minutes: 60\n"
    )
    return path


def _espd(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sync", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def _wait_ready(url: str, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url + "/readyz", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} never became ready")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    port = _free_port()
    config = _config(tmp_path, port)
    process = _espd("run", str(config))
    try:
        yield process, f"http://127.0.0.1:{port}", config
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_daemon_serves_health_refuses_a_second_instance_survives_a_bad_reload_and_stops_on_sigterm(
    daemon: tuple[subprocess.Popen[str], str, Path],
) -> None:
    process, url, config = daemon
    _wait_ready(url)
    assert httpx.get(url + "/healthz").status_code == 200
    metrics = httpx.get(url + "/metrics").text
    assert "espd_cycles_total" in metrics or "espd_cycle" in metrics

    second = subprocess.run(
        [sys.executable, "-m", "sync", "once", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == EXIT_LOCKED, second.stdout + second.stderr
    assert "holds the lock" in second.stdout + second.stderr

    good = config.read_text()
    config.write_text(good + "schedule:\n  pull_evry_minutes: 5\n")
    process.send_signal(signal.SIGHUP)
    time.sleep(1.5)
    assert process.poll() is None
    assert httpx.get(url + "/healthz").status_code == 200

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert time.monotonic() - started < 30
    output = process.stdout.read() if process.stdout else ""
    assert "reload_rejected" in output
    assert "event=raw_json_purged" in output, "the daemon enforces raw JSON retention itself"
    assert "stopped" in output


def test_promoted_models_holdout_metrics_become_gauges(store_engine: Engine) -> None:
    with session_scope(store_engine) as session:
        holdout = {"lightgbm": {"roc_auc": 0.84, "brier": 0.12}, "baseline": {"roc_auc": 0.81}}
        session.add(
            tables.Model(output="churn", version="v1", kind="lightgbm", promoted=True,
                         metrics={"holdout": holdout}, created_at=datetime.now(UTC))
        )  # fmt: skip
        session.add(
            tables.Model(output="churn", version="v0", kind="lightgbm", promoted=False,
                         metrics={"holdout": {"lightgbm": {"roc_auc": 0.5}}}, created_at=datetime.now(UTC))
        )  # fmt: skip
    metrics = Metrics()
    record_model_quality(metrics, store_engine)
    text = metrics.exposition()[0].decode()
    assert 'output="churn"' in text and 'metric="roc_auc"' in text
    assert "0.84" in text and "0.5\n" not in text
