"""One espd per state directory: an flock(2) on `<state_dir>/espd.lock` that holds the owner's pid.

flock is released by the kernel when the holder's last file descriptor closes, which includes being
killed with SIGKILL, so a crashed daemon never leaves a stale lock behind and no pid-liveness guessing
is needed. The pid in the file is only there to make the error message useful. The file is never
deleted: unlinking a lock file races with a process that has opened but not yet locked it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

EXIT_LOCKED = 75
"""EX_TEMPFAIL from sysexits.h: another instance is running; try again later."""

LOCK_FILE_NAME = "espd.lock"


class AlreadyRunning(Exception):
    """Another process holds the instance lock of this state directory."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        holder = f"pid {pid}" if pid is not None else "a process that has not written its pid yet"
        super().__init__(
            f"another espd ({holder}) holds the lock {path}; wait for it to finish or stop it, then try again"
        )


class InstanceLock:
    """An exclusive, non-blocking lock on the state directory; use as a context manager."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LOCK_FILE_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> InstanceLock:
        """Take the lock or raise `AlreadyRunning`; creates the state directory 0700 if missing."""
        if self._fd is not None:
            return self
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunning(self.path, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (also done by the kernel if the process dies)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> InstanceLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    """The holder's pid, or None while it is between locking and writing it."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None
