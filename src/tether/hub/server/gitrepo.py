"""A hub repo as a git repository, for clone, fetch and push (routers/git.py serves it).

The hub stores commits as rows with their whole file tree (db.py), not as git objects, so
for each request the repo is built as an in-memory dulwich repository: one blob per file
(LFS files as their pointer file, as huggingface.co serves them), the trees and commit
objects of gitobjects.py, branches as ``refs/heads/*``, tags as ``refs/tags/*`` and
``HEAD`` pointing at ``main``. Commit ids are the API's: a commit made by this server is
the git commit ``gitobjects.git_commit`` describes; a pushed commit is the very object the
client sent (``Commit.git_raw``). A commit stored before commit ids were
git ids (its id was a hash over JSON) keeps that id in the API; git sees the commit
rebuilt here instead, and so do its descendants (``GitRepo.git_ids`` maps one to the other).

dulwich's upload-pack then negotiates with the client and packs only what it lacks.
Building a pack reads every regular (non-LFS) file of the repo's history from the blob
store, on each upload-pack request; LFS bodies are never read (their pointer is made from
the tree entry). The ref advertisement reads none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dulwich.objects import ObjectID, ShaFile
from dulwich.protocol import CAPABILITY_FILTER
from dulwich.refs import Ref
from dulwich.repo import MemoryRepo
from dulwich.server import Backend, UploadPackHandler
from sqlalchemy import select
from sqlalchemy.orm import Session

from tether.errors import HubIntegrityError
from tether.hub.server.db import Commit, Repo
from tether.hub.server.gitobjects import (
    git_commit,
    git_object_id,
    git_trees,
    lfs_pointer,
    pushed_header,
)
from tether.hub.server.repos import DEFAULT_BRANCH, list_refs, tree_of
from tether.hub.server.storage import BlobStore

#: dulwich's numbers for the object kinds gitobjects.py builds.
TYPE_NUM = {"blob": 3, "tree": 2, "commit": 1}


@dataclass
class GitRepo:
    """The git view of one hub repo: dulwich's repository, and API id -> git id."""

    repo: MemoryRepo
    git_ids: dict[str, str] = field(default_factory=dict)


def _add(repo: MemoryRepo, kind: str, raw: bytes, expected: str) -> None:
    obj = ShaFile.from_raw_string(TYPE_NUM[kind], raw)
    # The ids gitobjects.py computes must be the ones git computes: loud if they ever part.
    assert obj.id.decode() == expected, (kind, obj.id, expected)
    repo.object_store.add_object(obj)


def _blob(store: BlobStore, path: str, entry: dict[str, Any]) -> bytes:
    if entry["lfs"]:
        return lfs_pointer(entry["sha256"], entry["size"])
    size = entry["size"]
    data = b"".join(store.open_range(entry["sha256"], 0, size - 1)) if size else b""
    if len(data) != size:
        raise HubIntegrityError(f"stored blob {entry['sha256']} of {path} is truncated")
    return data


def _parents_first(commits: list[Commit]) -> list[Commit]:
    """Commits ordered so a parent comes before its children (history is a chain per
    branch, so walking each commit's ancestry, oldest first, is enough)."""
    by_oid = {c.oid: c for c in commits}
    done: set[str] = set()
    out: list[Commit] = []
    for commit in commits:
        chain: list[Commit] = []
        current: Commit | None = commit
        while current is not None and current.oid not in done:
            chain.append(current)
            done.add(current.oid)
            current = by_oid.get(current.parent_oid) if current.parent_oid else None
        out.extend(reversed(chain))
    return out


def build(session: Session, store: BlobStore, repo: Repo, *, blobs: bool = True) -> GitRepo:
    """The git repository of ``repo``: every commit, its trees and blobs, and the refs.

    ``blobs=False`` leaves the file contents out (no read of the blob store): enough to
    advertise refs, as trees and commits need only the blob ids the tree entries hold.
    """
    git = GitRepo(MemoryRepo())
    commits = list(session.scalars(select(Commit).where(Commit.repo_pk == repo.id)))
    seen: set[str] = set()
    for commit in _parents_first(commits):
        tree = tree_of(commit)
        for path, entry in tree.items():
            if blobs and entry["oid"] not in seen:
                seen.add(entry["oid"])
                _add(git.repo, "blob", _blob(store, path, entry), entry["oid"])
        root, trees = git_trees(tree)
        for oid, raw in trees.items():
            if oid not in seen:
                seen.add(oid)
                _add(git.repo, "tree", raw, oid)
        parent = git.git_ids.get(commit.parent_oid) if commit.parent_oid else None
        if commit.git_raw is not None:  # pushed: the client's object, as it was checked
            raw = commit.git_raw
            if pushed_header(raw)[:2] != (root, [parent] if parent else []):
                raise HubIntegrityError(f"stored git object of commit {commit.oid} disagrees")
        else:
            raw = git_commit(
                root, parent, commit.title, commit.message, commit.author, commit.created_at
            )
        oid = git_object_id("commit", raw)
        _add(git.repo, "commit", raw, oid)
        git.git_ids[commit.oid] = oid
    for ref in list_refs(session, repo):
        prefix = b"refs/heads/" if ref.kind == "branch" else b"refs/tags/"
        target = git.git_ids.get(ref.commit_oid)
        if target is not None:
            git.repo.refs[Ref(prefix + ref.name.encode())] = ObjectID(target.encode())
    git.repo.refs.set_symbolic_ref(Ref(b"HEAD"), Ref(b"refs/heads/" + DEFAULT_BRANCH.encode()))
    return git


class OneRepoBackend(Backend):
    """dulwich's backend for a single, already built repository (the request's)."""

    def __init__(self, repo: MemoryRepo) -> None:
        self.repo = repo

    def open_repository(self, path: str) -> Any:
        return self.repo


class UploadPack(UploadPackHandler):
    """dulwich's upload-pack without ``filter``: a partial clone (``--filter=blob:none``)
    later asks for single blobs by id, which dulwich refuses as unadvertised objects, so
    the clone would fail at checkout. Without the capability git warns and clones whole
    (git 2.39 still names ``filter`` among its wants' capabilities; it is ignored)."""

    def capabilities(self) -> list[bytes]:
        return [c for c in super().capabilities() if c != CAPABILITY_FILTER]

    def set_client_capabilities(self, caps: Iterable[bytes]) -> None:
        super().set_client_capabilities([c for c in caps if c != CAPABILITY_FILTER])
