"""One server per data directory: an exclusive lock on ``DIR/hub.lock`` held while it runs.

Two servers on one directory would each believe they own the upload area and the
blob files; with SQLite they would also fight over the one writer. So the app takes an
advisory ``flock`` on start and holds it until it stops; a second server (another process,
or another app in the same process) is refused before it serves anything. The kernel
drops the lock when the process dies, so a crashed server never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tether.errors import HubError


class DataDirLockedError(HubError):
    """Another server holds the data directory; ``path`` is the lock file, ``holder`` the
    process id written into it (None if unreadable)."""

    default_hint = "Stop the other `tether hub serve`, or give this one its own --data."

    def __init__(self, path: Path, holder: int | None) -> None:
        who = f"process {holder}" if holder else "another process"
        super().__init__(f"the hub data directory {path.parent} is in use by {who} ({path})")
        self.path = path
        self.holder = holder


class DataLock:
    """The held lock; ``release()`` (or process exit) lets another server start."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "hub.lock"
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise DataDirLockedError(self.path, holder) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None


def check_free(data_dir: Path) -> None:
    """Raise ``DataDirLockedError`` now if a server holds ``data_dir`` (the command line
    asks before it prints anything); the app takes the lock itself when it starts."""
    DataLock(data_dir).release()
