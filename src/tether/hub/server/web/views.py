"""What the web pages show, read from the repo model: no HTML here.

The listing applies the API's read rule (deps.readable_repo) in SQL: a private repo is
listed only for a caller whose namespace it is. A folder view is computed from a commit's
tree (path -> entry), which has no folder rows: a folder is a common path prefix, and its
size and file count are summed over the files under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from tether.hub.server import access, repos
from tether.hub.server.db import Commit, Ref, Repo
from tether.hub.server.storage import BlobStore
from tether.hub.server.tokens import Identity

#: A file larger than this is offered as a download, not shown (the page stays small).
TEXT_LIMIT = 512 * 1024
#: The most repos the front page lists (newest first), and commits a history page shows.
LIST_LIMIT = 200


@dataclass(frozen=True)
class Listed:
    """One repo on the front page, with the time of its main branch's head commit."""

    repo: Repo
    updated: datetime


def readable_repos(session: Session, caller: Identity | None, search: str = "") -> list[Listed]:
    """Repos ``caller`` may read whose ``namespace/name`` contains ``search`` (any case),
    most recently updated first."""
    query = (
        select(Repo, Commit.created_at)
        .join(Ref, and_(Ref.repo_pk == Repo.id, Ref.kind == "branch"))
        .join(Commit, and_(Commit.repo_pk == Repo.id, Commit.oid == Ref.commit_oid))
        .where(Ref.name == repos.DEFAULT_BRANCH)
        .order_by(Commit.created_at.desc(), Repo.id.desc())
        .limit(LIST_LIMIT)
    )
    visible: ColumnElement[bool] = Repo.private.is_(False)
    namespaces = access.private_namespaces(session, caller)
    if namespaces:
        visible = or_(visible, Repo.namespace.in_(sorted(namespaces)))
    query = query.where(visible)
    if search.strip():
        full_name = Repo.namespace.concat("/").concat(Repo.name)
        query = query.where(full_name.icontains(search.strip(), autoescape=True))
    return [Listed(repo, updated) for repo, updated in session.execute(query)]


@dataclass(frozen=True)
class Entry:
    """A row of a folder view: a file (``lfs`` set for LFS files) or a folder."""

    name: str
    path: str
    is_dir: bool
    size: int
    lfs: bool = False
    files: int = 1


def folder(tree: dict[str, dict[str, Any]], path: str) -> list[Entry] | None:
    """The folder ``path`` ('' for the root) of ``tree``: folders first, then files, each
    sorted by name; None when no file lies under it."""
    prefix = path.strip("/") + "/" if path.strip("/") else ""
    dirs: dict[str, list[int]] = {}
    files: list[Entry] = []
    for full, entry in tree.items():
        if not full.startswith(prefix):
            continue
        name, slash, _ = full[len(prefix) :].partition("/")
        if slash:
            size_count = dirs.setdefault(name, [0, 0])
            size_count[0] += entry["size"]
            size_count[1] += 1
        else:
            files.append(Entry(name, full, False, entry["size"], lfs=bool(entry["lfs"])))
    if not dirs and not files:
        return None
    out = [Entry(n, prefix + n, True, s, files=c) for n, (s, c) in sorted(dirs.items())]
    return out + sorted(files, key=lambda e: e.name)


def text_of(store: BlobStore, entry: dict[str, Any]) -> str | None:
    """A file's text when it is small, not LFS, and UTF-8; None means offer a download."""
    size = entry["size"]
    if entry["lfs"] or size > TEXT_LIMIT:
        return None
    data = b"".join(store.open_range(entry["sha256"], 0, size - 1)) if size else b""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def human_size(size: int) -> str:
    """``1.2 MB``-style sizes (powers of 1000, as huggingface.co shows them)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
