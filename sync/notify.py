"""systemd's sd_notify protocol, written by hand: one datagram to $NOTIFY_SOCKET per state change.

With `Type=notify` systemd waits for READY=1 before it calls the service started, and with
`WatchdogSec=` it kills and restarts a service that stops sending WATCHDOG=1. The protocol is a
newline-separated `KEY=value` datagram on an AF_UNIX socket whose path is in $NOTIFY_SOCKET (a leading
`@` means a Linux abstract socket), so libsystemd is not needed. Outside systemd (a terminal, Docker)
$NOTIFY_SOCKET is unset and every call is a cheap no-op. A failed send is logged, never raised: losing
a notification must not take the daemon down.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from sync.logs import log_event

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends READY/WATCHDOG/STOPPING/STATUS to systemd when run under it."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self._watchdog_usec = _watchdog_usec(env)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings (half the timeout, as systemd advises), or None if off."""
        return None if self._watchdog_usec is None else self._watchdog_usec / 2_000_000

    def ready(self, status: str | None = None) -> bool:
        """Startup finished: the store is migrated, the lock held and the HTTP server listening."""
        return self.notify("READY=1", *_status_line(status))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *_status_line(status))

    def reloading(self) -> bool:
        """Config reload started (SIGHUP); send `ready()` again when it is done."""
        return self.notify("RELOADING=1")

    def status(self, text: str) -> bool:
        """A one-line status shown by `systemctl status espd`."""
        return self.notify(*_status_line(text))

    def notify(self, *assignments: str) -> bool:
        """Send `KEY=value` lines in one datagram; True if sent, False if disabled or it failed."""
        if self._address is None:
            return False
        payload = "\n".join(assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall(payload)
        except OSError as exc:
            log_event(log, "sd_notify_failed", level=logging.WARNING, error=exc.strerror or repr(exc))
            return False
        return True


def _status_line(text: str | None) -> list[str]:
    """STATUS= must stay on one line: a newline would start a new (bogus) assignment."""
    return [] if text is None else ["STATUS=" + " ".join(text.split())]


def _socket_address(value: str) -> str | None:
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    log_event(log, "notify_socket_ignored", level=logging.WARNING, reason="not a unix socket path")
    return None


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    """$WATCHDOG_USEC when it is meant for this process ($WATCHDOG_PID absent or ours)."""
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    if not usec.isdigit() or int(usec) == 0:
        log_event(log, "watchdog_usec_ignored", level=logging.WARNING, value=usec)
        return None
    return int(usec)
