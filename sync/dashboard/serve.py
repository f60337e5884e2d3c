"""Serve the dashboard over a finished store, without a scheduler: what `espd demo --serve` runs.

It is the daemon's own HTTP server (health, metrics, token rules) with the dashboard mounted at
`DASHBOARD_PATH`, kept alive, heartbeat included, until Ctrl-C.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import text

from sync.config import Config
from sync.dashboard.app import create_app
from sync.health import HealthServer, HealthState
from sync.metrics import Metrics
from sync.store import open_engine

DASHBOARD_PATH = "/dashboard"
BEAT_SECONDS = 5.0


def serve_dashboard(config: Config, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Block serving `config`'s store on host:port; `announce` gets the dashboard URL once it answers."""
    engine = open_engine(config.store_url)
    token = config.server.token.get_secret_value() if config.server.token else None

    def ping() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    state = HealthState()
    server = HealthServer(state=state, metrics=Metrics(), store_ping=ping, host=host, port=port, token=token)
    server.mount(DASHBOARD_PATH, create_app(engine, config))
    try:
        with server:
            announce(f"{server.url}{DASHBOARD_PATH}/")
            while True:
                state.beat()
                time.sleep(BEAT_SECONDS)
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()
