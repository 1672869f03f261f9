"""Atomic file and directory publishing, shared by bundles and the local runner.

Readers see the old content or the new, never half: write beside the target, fsync,
rename over it (and fsync the directory so the rename survives a power cut). A
directory is replaced with one Linux ``renameat2(RENAME_EXCHANGE)`` where the
filesystem supports it, else by setting the old one aside first.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any) -> None:
    """Write JSON through a temp file, fsync, rename: readers see old or new, never half."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write text through a temp file, fsync, rename, fsync the directory."""
    part = path.with_name(path.name + ".part")
    with part.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(part, path)
    fsync_dir(path.parent)


def publish_file(tmp: Path, target: Path) -> None:
    """Make a fully written ``tmp`` file visible as ``target`` in one rename."""
    fsync_file(tmp)
    os.replace(tmp, target)
    fsync_dir(target.parent)


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root``, deepest first."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            fsync_file(path)
        elif path.is_dir():
            fsync_dir(path)
    fsync_dir(root)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems cannot fsync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def swap_in(tmp: Path, out: Path, *, on_stage: Callable[[str], None] = lambda stage: None) -> None:
    """Publish directory ``tmp`` as ``out``: absent -> new, or old -> new, nothing between.

    ``on_stage`` is told each step that has become durable ("old-aside", "swapped").
    """
    if not out.exists():
        os.rename(tmp, out)
        fsync_dir(out.parent)
        on_stage("swapped")
        return
    if exchange(tmp, out):  # tmp now holds the old directory
        fsync_dir(out.parent)
        on_stage("swapped")
        discard(tmp, out)
        return
    # No atomic exchange (not Linux, or the filesystem refuses): old aside, new in.
    aside = out.parent / f".{out.name}.tether-old-{uuid.uuid4().hex[:8]}"
    os.rename(out, aside)
    on_stage("old-aside")
    os.rename(tmp, out)
    fsync_dir(out.parent)
    on_stage("swapped")
    discard(aside, out)


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux renameat2(RENAME_EXCHANGE); False if unsupported."""
    if sys.platform != "linux":
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, f"renameat2({a}, {b}) failed: {os.strerror(err)}")


def discard(old: Path, out: Path) -> None:
    """Remove a replaced bundle: first rename it to a trash name, so no half-deleted
    directory ever carries a bundle-like name."""
    trash = out.parent / f".{out.name}.tether-trash-{uuid.uuid4().hex[:8]}"
    os.rename(old, trash)
    shutil.rmtree(trash, ignore_errors=True)


def recover(out_dir: str | Path, is_complete: Callable[[Path], bool]) -> list[Path]:
    """Clean up after a publish that was killed: remove temp and trash dirs beside
    ``out_dir``; if ``out_dir`` is gone but its previous version was set aside (and
    ``is_complete`` says it is whole), put it back.

    Returns the paths removed or restored.
    """
    out = Path(out_dir).expanduser().absolute()
    touched: list[Path] = []
    if not out.parent.is_dir():
        return touched
    for leftover in sorted(out.parent.glob(f".{out.name}.tether-*")):
        kind = leftover.name[len(out.name) + 9 :].split("-", 1)[0]
        if kind == "old" and not out.exists() and is_complete(leftover):
            os.rename(leftover, out)
            touched.append(out)
        elif kind in ("tmp", "trash", "old") and leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
            touched.append(leftover)
    return touched
