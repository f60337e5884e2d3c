"""The instance lock, exercised by real processes: a second holder is refused, a killed one is not."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.lock import EXIT_LOCKED, LOCK_FILE_NAME, AlreadyRunning, InstanceLock

REPO = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sync.lock import InstanceLock
    lock = InstanceLock(Path(sys.argv[1])).acquire()
    print("locked", flush=True)
    sys.stdin.read()  # hold until the test closes stdin or kills us
    """
)

CONTENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sync.lock import EXIT_LOCKED, AlreadyRunning, InstanceLock
    try:
        InstanceLock(Path(sys.argv[1])).acquire()
    except AlreadyRunning as exc:
        print(exc, file=sys.stderr)
        sys.exit(EXIT_LOCKED)
    print("acquired")
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A separate process holding the lock of tmp_path/state until the test ends."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "state")],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "locked\n"
    yield process
    process.kill()
    process.wait(timeout=10)


def _contend(state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CONTENDER, str(state_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_second_process_is_refused_with_the_lock_file_and_the_holders_pid(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    lock_path = tmp_path / "state" / LOCK_FILE_NAME
    refused = _contend(tmp_path / "state")
    assert refused.returncode == EXIT_LOCKED == 75
    assert f"another espd (pid {holder.pid}) holds the lock {lock_path}" in refused.stderr
    assert lock_path.read_text() == f"{holder.pid}\n"

    with pytest.raises(AlreadyRunning) as caught:
        InstanceLock(tmp_path / "state").acquire()
    assert caught.value.pid == holder.pid and caught.value.path == lock_path


def test_the_lock_is_released_when_the_holder_is_killed_with_sigkill(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    assert holder.wait(timeout=10) == -signal.SIGKILL
    taken = _contend(tmp_path / "state")
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout == "acquired\n"


def test_the_lock_file_is_private_holds_our_pid_and_is_emptied_on_release(tmp_path: Path) -> None:
    state_dir = tmp_path / "new" / "state"
    with InstanceLock(state_dir) as lock:
        assert lock.held
        assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600
        assert lock.path.read_text() == f"{os.getpid()}\n"
    assert not lock.held
    assert lock.path.read_text() == ""
    assert _contend(state_dir).returncode == 0


def test_a_second_lock_in_the_same_process_is_refused_too(tmp_path: Path) -> None:
    with InstanceLock(tmp_path), pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
        InstanceLock(tmp_path).acquire()
    with InstanceLock(tmp_path) as again:
        assert again.held


def test_a_lock_file_left_world_readable_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / LOCK_FILE_NAME
    path.write_text("123\n")
    path.chmod(0o644)
    with InstanceLock(tmp_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), InstanceLock(tmp_path):
        raise RuntimeError("cycle failed")
    assert _contend(tmp_path).returncode == 0


def test_a_symlinked_lock_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    (tmp_path / LOCK_FILE_NAME).symlink_to(target)
    with pytest.raises(OSError):
        InstanceLock(tmp_path).acquire()
