"""One run per output: a lock file beside the output, with a stale-lock rule.

``OUTPUT.tether-lock`` is created with ``O_EXCL`` and holds the owner's host and pid.
A second run on the same output is refused while the owner lives. The lock is stale,
and taken over, when its owner ran on this host and its pid is gone (a killed run),
or when it is unreadable and older than ``STALE_UNREADABLE_S`` (killed mid-write).
A lock held from another host is never guessed stale: the message names the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from tether.errors import OutputError

LOCK_SUFFIX = ".tether-lock"
STALE_UNREADABLE_S = 30.0


def lock_path(output: str | Path) -> Path:
    return Path(str(output) + LOCK_SUFFIX)


@contextlib.contextmanager
def output_lock(output: str | Path) -> Iterator[Path]:
    """Hold the lock on ``output`` for the ``with`` block; refuse if a live run holds it."""
    path = lock_path(output)
    _acquire(path, output)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def _acquire(path: Path, output: str | Path) -> None:
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if _is_stale(path, holder):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            raise OutputError(
                f"Another run is writing {output} (lock {path} held by "
                f"{_describe(holder)}), so this run would mix or clobber its output.",
                "Wait for it to finish, or choose another output. If no run is alive, "
                f"delete {path}.",
                path=str(output),
            ) from None
        except OSError as exc:
            raise OutputError(
                f"Cannot create the lock file {path}: {exc.strerror or exc}.",
                "Check that the output directory exists and is writable.",
                path=str(output),
            ) from exc
        with os.fdopen(fd, "w") as handle:
            json.dump(owner, handle)
        return
    raise OutputError(  # pragma: no cover - three races lost in a row
        f"Could not take the lock {path}.", "Try again.", path=str(output)
    )


def _holder(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_stale(path: Path, holder: dict[str, object] | None) -> bool:
    if holder is None:
        try:
            return time.time() - path.stat().st_mtime > STALE_UNREADABLE_S
        except FileNotFoundError:
            return True
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def _describe(holder: dict[str, object] | None) -> str:
    if holder is None:
        return "an unknown run"
    return f"pid {holder.get('pid')} on {holder.get('host')}"
