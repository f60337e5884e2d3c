"""sd_notify against a real AF_UNIX datagram socket standing in for systemd's notify socket."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.notify import SystemdNotifier

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest) -> Iterator[tuple[str, socket.socket]]:
    """(value for $NOTIFY_SOCKET, the receiving socket), like systemd's, with sender credentials on."""
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    receiver.settimeout(10)
    with tempfile.TemporaryDirectory(prefix="sd") as directory:  # short: sun_path holds 108 bytes
        if request.param == "path":
            value = f"{directory}/notify"
            receiver.bind(value)
        else:
            value = f"@espd-test-{uuid.uuid4().hex}"
            receiver.bind("\0" + value[1:])
        yield value, receiver
    receiver.close()


def _receive(receiver: socket.socket) -> tuple[str, int]:
    """One datagram's text and the pid the kernel says sent it (what NotifyAccess=main checks)."""
    data, ancillary, _, _ = receiver.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
    pids = [
        struct.unpack("3i", payload)[0]
        for level, kind, payload in ancillary
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
    ]
    return data.decode(), pids[0]


def test_every_state_reaches_the_socket_as_one_datagram(notify_socket: tuple[str, socket.socket]) -> None:
    value, receiver = notify_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": value})
    assert notifier.enabled
    assert notifier.ready(status="serving 4 connectors")
    assert notifier.watchdog()
    assert notifier.status("cycle 3:\n pulling klaviyo")
    assert notifier.reloading()
    assert notifier.stopping()
    received = [_receive(receiver) for _ in range(5)]
    assert [text for text, _ in received] == [
        "READY=1\nSTATUS=serving 4 connectors",
        "WATCHDOG=1",
        "STATUS=cycle 3: pulling klaviyo",
        "RELOADING=1",
        "STOPPING=1",
    ]
    assert {pid for _, pid in received} == {os.getpid()}


def test_the_daemon_process_reads_the_socket_from_its_environment(
    notify_socket: tuple[str, socket.socket],
) -> None:
    value, receiver = notify_socket
    code = "from sync.notify import SystemdNotifier; SystemdNotifier().ready('up')"
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, env={**os.environ, "NOTIFY_SOCKET": value}
    )
    assert child.wait(timeout=60) == 0
    assert _receive(receiver) == ("READY=1\nSTATUS=up", child.pid)


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert notifier.ready() is False and notifier.watchdog() is False
    assert notifier.watchdog_interval() is None


def test_a_socket_nobody_listens_on_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    with tempfile.TemporaryDirectory(prefix="sd") as directory:
        notifier = SystemdNotifier({"NOTIFY_SOCKET": f"{directory}/gone"})
        assert notifier.ready() is False
    assert any("event=sd_notify_failed" in r.getMessage() for r in caplog.records)


def test_a_socket_value_that_is_not_a_unix_path_is_ignored() -> None:
    assert not SystemdNotifier({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_the_watchdog_interval_is_half_the_timeout_meant_for_this_process(
    environ: dict[str, str], interval: float | None
) -> None:
    assert SystemdNotifier(environ).watchdog_interval() == interval
