"""`git push` into a hub repo: each ref update the client sends becomes hub commits and ref
changes through the API's own paths (repos.apply_commit, create_ref, delete_ref).

The pack is unpacked into the request's scratch repository (gitrepo.build: in memory,
holding the repo's objects so a thin pack's deltas resolve), never into the hub's storage.
Then, for each ref, oldest commit first, everything is checked before anything lands:

- a branch (``refs/heads/*``) moves only forward from the head the client saw: the client's
  old sha is the compare-and-swap ``parent_commit`` of the first new commit, so a commit
  made meanwhile through the API makes the push fail ("fetch first") and nothing is lost.
  A force push, a move onto another existing commit and a merge commit are refused.
- a commit is kept as the client's git object (``Commit.git_raw``), so the API's commit id
  is the client's sha; its tree must be what the hub can hold: regular files (mode
  100644) in folders, at paths ``repos.check_path`` allows. Executable files, symlinks
  and submodules are refused, as is a root commit (a branch must grow from hub history).
- a blob that is a Git LFS pointer must name an object already uploaded to this repo (git
  lfs pushes them through the batch API first) and becomes an LFS tree entry; a regular
  blob of ``LFS_THRESHOLD`` bytes or more is refused (track it with git lfs).
- a tag (``refs/tags/*``) is created at a commit the hub has or deleted; lightweight only
  (an annotated tag's object would be lost, and git would see another sha), never moved.

A refusal is a ``PushRefused`` with the reason git prints as ``! [remote rejected]``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, cast

from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.protocol import CAPABILITY_ATOMIC
from dulwich.refs import Ref
from dulwich.server import ReceivePackHandler
from sqlalchemy.orm import Session

from tether.errors import HubError
from tether.hub.server import repos
from tether.hub.server.config import ServerConfig
from tether.hub.server.db import Repo, has_object
from tether.hub.server.gitobjects import LFS_THRESHOLD, git_trees, lfs_pointer, tree_entry
from tether.hub.server.gitrepo import GitRepo
from tether.hub.server.storage import BlobStore, receive_to_temp

ZERO = "0" * 40
MODE_FILE, MODE_TREE = 0o100644, 0o040000
MODE_WORDS = {0o100755: "an executable file", 0o120000: "a symlink", 0o160000: "a submodule"}
LFS_POINTER = re.compile(rb"^version https://git-lfs\.github\.com/spec/v1\n")
LFS_FIELDS = re.compile(rb"\noid sha256:([0-9a-f]{64})\nsize (\d+)\n")


class PushRefused(HubError):
    """One ref update of a push refused; ``ref`` is it, the message says why."""

    status = 400

    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(reason)
        self.ref = ref


@dataclass
class Pushed:
    """A new commit ready to land: its raw object, the changes from its parent, its text."""

    oid: str
    raw: bytes
    operations: list[repos.Operation]
    title: str
    message: str


@dataclass
class Push:
    """What one push request needs: where it lands, who pushes, the scratch repository."""

    session: Session
    store: BlobStore
    config: ServerConfig
    repo: Repo
    git: GitRepo
    user: str

    def __post_init__(self) -> None:
        self.hub_ids = {git_id: hub_id for hub_id, git_id in self.git.git_ids.items()}

    def update(self, old: str, new: str, ref: str) -> None:
        """Apply one ref update (``old``/``new`` the client's shas, ZERO for none)."""
        if ref.startswith("refs/heads/"):
            kind, name = "branch", ref.removeprefix("refs/heads/")
        elif ref.startswith("refs/tags/"):
            kind, name = "tag", ref.removeprefix("refs/tags/")
        else:
            raise PushRefused(ref, "only refs/heads/* and refs/tags/* are kept by this hub")
        try:
            repos.check_ref_name(kind, name)
        except HubError as exc:
            raise PushRefused(ref, exc.message) from None
        current = repos.find_ref(self.session, self.repo, kind, name)
        current_git = self.git.git_ids.get(current.commit_oid) if current else None
        if (current_git or ZERO) != old:
            raise PushRefused(ref, "fetch first: the ref moved since you fetched")
        try:
            if new == ZERO:
                repos.delete_ref(self.session, self.repo, kind, name)
            elif kind == "tag":
                self._tag(ref, name, new, exists=current is not None)
            else:
                self._branch(ref, name, old, new)
        except PushRefused:
            raise
        except HubError as exc:
            raise PushRefused(ref, _one_line(exc.message)) from None
        except KeyError as exc:  # an object neither the pack nor the hub has
            raise PushRefused(ref, f"missing object {exc}") from None

    def _tag(self, ref: str, name: str, new: str, *, exists: bool) -> None:
        if exists:
            raise PushRefused(ref, "tags are not moved: delete the tag first")
        obj = self.git.repo.object_store[ObjectID(new.encode())]
        if not isinstance(obj, Commit):
            raise PushRefused(ref, "only lightweight tags are kept (git tag NAME, without -a/-s)")
        hub_id = self.hub_ids.get(new)
        if hub_id is None:
            raise PushRefused(ref, "the tag names a commit the hub lacks: push its branch first")
        repos.create_ref(self.session, self.repo, "tag", name, hub_id)

    def _branch(self, ref: str, name: str, old: str, new: str) -> None:
        chain, base = self._new_commits(ref, new)
        if old != ZERO and base != old:
            raise PushRefused(ref, "non-fast-forward: only pushes that add to the branch")
        if old == ZERO and not chain:
            pass  # a new branch at a commit the hub has
        elif not chain:
            raise PushRefused(ref, "moving a branch onto an existing commit is not supported")
        base_hub = self.hub_ids[base]
        if base_hub != base:
            raise PushRefused(ref, "the branch's head predates git ids; commit to it via the API")
        tree = repos.tree_of(_get_commit(self.session, self.repo, base_hub))
        pushed: list[Pushed] = []
        for commit in chain:  # check them all before anything lands
            new_tree = self._tree(ref, commit)
            pushed.append(_pushed(commit, tree, new_tree))
            tree = new_tree
        created = False
        if old == ZERO:
            repos.create_ref(self.session, self.repo, "branch", name, base_hub)
            created = True
        parent = base_hub
        try:
            for item in pushed:
                landed = repos.apply_commit(
                    self.session,
                    self.repo,
                    f"refs/heads/{name}",
                    item.operations,
                    title=item.title,
                    message=item.message,
                    author=self.user,
                    parent_commit=parent,
                    git_raw=item.raw,
                )
                assert landed.oid == item.oid, (landed.oid, item.oid)
                parent = landed.oid
                self.hub_ids[parent] = self.git.git_ids[parent] = parent
        except HubError as exc:
            if created and parent == base_hub:  # nothing landed: no branch left behind
                repos.delete_ref(self.session, self.repo, "branch", name)
            if exc.status == 412:
                raise PushRefused(ref, "fetch first: the branch moved while pushing") from None
            raise

    def _new_commits(self, ref: str, new: str) -> tuple[list[Commit], str]:
        """The commits from ``new`` back to the first one the hub has (oldest first), and
        that one's id."""
        chain: list[Commit] = []
        current = new
        while current not in self.hub_ids:
            obj = self.git.repo.object_store[ObjectID(current.encode())]
            if not isinstance(obj, Commit):
                raise PushRefused(ref, f"{current} is not a commit")
            if len(obj.parents) != 1:
                what = "a merge commit" if obj.parents else "a root commit (unrelated history)"
                raise PushRefused(ref, f"commit {current[:12]} is {what}; history here is linear")
            chain.append(obj)
            current = obj.parents[0].decode()
        return list(reversed(chain)), current

    def _tree(self, ref: str, commit: Commit) -> dict[str, dict[str, Any]]:
        """The hub's file tree for a pushed commit, or a refusal of what it cannot hold."""
        out: dict[str, dict[str, Any]] = {}
        short = commit.id.decode()[:12]

        def walk(tree: Tree, prefix: str) -> None:
            for item in tree.iteritems():
                path = prefix + item.path.decode("utf-8", "replace")
                if item.mode == MODE_TREE:
                    sub = self.git.repo.object_store[item.sha]
                    assert isinstance(sub, Tree)
                    walk(sub, path + "/")
                    continue
                if item.mode != MODE_FILE:
                    word = MODE_WORDS.get(item.mode, f"mode {item.mode:o}")
                    raise PushRefused(ref, f"{path} in {short} is {word}; only regular files")
                try:
                    repos.check_path(path)
                except HubError:
                    raise PushRefused(ref, f"invalid path {path!r} in {short}") from None
                blob = self.git.repo.object_store[item.sha]
                assert isinstance(blob, Blob)
                out[path] = self._entry(ref, path, blob.as_raw_string())
                if out[path]["oid"] != item.sha.decode():
                    raise PushRefused(ref, f"{path} in {short}: a non-canonical LFS pointer")

        root = self.git.repo.object_store[commit.tree]
        assert isinstance(root, Tree)
        walk(root, "")
        if git_trees(out)[0] != commit.tree.decode():
            raise PushRefused(ref, f"the tree of {short} cannot be stored as it is (empty?)")
        return out

    def _entry(self, ref: str, path: str, data: bytes) -> dict[str, Any]:
        """The tree entry of one blob, storing a regular file's bytes."""
        if LFS_POINTER.match(data):
            found = LFS_FIELDS.search(data)
            if found is None or lfs_pointer(found[1].decode(), int(found[2])) != data:
                raise PushRefused(ref, f"{path}: an LFS pointer the hub cannot read")
            sha, size = found[1].decode(), int(found[2])
            if (
                not self.store.exists(sha)
                or self.store.size(sha) != size
                or not has_object(self.session, self.repo.id, sha)
            ):
                raise PushRefused(ref, f"{path}: LFS object {sha} was not uploaded (git lfs push)")
            return tree_entry(sha, size, lfs=True)
        if len(data) >= LFS_THRESHOLD:
            raise PushRefused(ref, f"{path} is {len(data)} bytes: track it with git lfs")
        sha = hashlib.sha256(data).hexdigest()
        if not self.store.exists(sha):
            tmp, _, _ = receive_to_temp(iter([data]), self.config.upload_dir)
            self.store.put_file(sha, tmp)
        return tree_entry(sha, len(data), lfs=False, content=data)


class ReceivePack(ReceivePackHandler):
    """dulwich's receive-pack, its ref updates made by ``Push`` instead of on the scratch
    repository's refs. Without ``atomic``: each ref lands or is refused on its own."""

    push: Push

    def capabilities(self) -> list[bytes]:
        return [c for c in super().capabilities() if c != CAPABILITY_ATOMIC]

    def _apply_pack(
        self, refs: list[tuple[ObjectID, ObjectID, Ref]]
    ) -> Iterator[tuple[bytes, bytes]]:
        # dulwich's own step yields the unpack status first; it is closed right after, so
        # it never goes on to move the scratch repository's refs.
        unpacked = cast(Generator[tuple[bytes, bytes], None, None], super()._apply_pack(refs))
        status = next(unpacked)  # the pack is in the scratch store: ("unpack", "ok"|error)
        unpacked.close()
        yield status
        if status[1] != b"ok":
            return
        for old, new, ref in refs:
            try:
                self.push.update(old.decode(), new.decode(), ref.decode("utf-8", "replace"))
            except PushRefused as exc:
                yield ref, exc.message.encode()
            else:
                yield ref, b"ok"


def _get_commit(session: Session, repo: Repo, oid: str) -> Any:
    commit = repos.get_commit(session, repo, oid)
    assert commit is not None, oid
    return commit


def _pushed(commit: Commit, before: dict[str, Any], after: dict[str, Any]) -> Pushed:
    """The operations that turn ``before`` into ``after``, and the commit's title/body."""
    operations = [repos.Operation("add", p, e) for p, e in after.items() if before.get(p) != e]
    operations += [repos.Operation("delete", p) for p in before if p not in after]
    text = commit.message.decode("utf-8", "replace")
    title, _, body = text.partition("\n")
    return Pushed(commit.id.decode(), commit.as_raw_string(), operations, title, body.strip("\n"))


def _one_line(message: str) -> str:
    return " ".join(message.split())
