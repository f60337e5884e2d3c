"""The read-only operator dashboard served by the daemon's HTTP server (see sync/dashboard/app.py)."""

from sync.dashboard.app import create_app, next_run_of

__all__ = ["create_app", "next_run_of"]
