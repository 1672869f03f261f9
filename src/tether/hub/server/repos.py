"""Repos, revisions, refs and commits: the git-like model behind every route.

A commit is applied in one transaction: read the branch head, check the client's
``parentCommit`` against it (412 when stale), write the new commit row, then move the branch
with a compare-and-swap ``UPDATE ... WHERE commit_oid = <old head>``. If another commit won
the race the update touches no row. A commit that named its ``parentCommit`` is then refused
(412): the client asked for that parent. One that named none asked only for "on top of the
branch", as huggingface.co applies it, so it is re-applied on the new head until it lands:
concurrent commits are serialised, none is lost. Never half-visible either: until the
transaction commits, readers see the old head.

A commit pushed with git (routers/git.py, gitpush.py) takes the same path with its raw git
object (``git_raw``) and the client's old head as ``parent_commit``: its id is the sha1 of
that object, which must name the tree the operations build and the head as its parent.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from tether.errors import HubConflictError, HubError, HubNotFoundError
from tether.hub.server.db import Commit, Ref, Repo
from tether.hub.server.errors import RepoExistsError
from tether.hub.server.gitobjects import (
    GITATTRIBUTES,
    commit_oid,
    git_object_id,
    git_trees,
    pushed_header,
    tree_entry,
)

REPO_TYPES = ("model", "dataset", "space")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
#: A commit may be named by a unique prefix of its id, as git and huggingface.co allow.
SHORT_COMMIT_RE = re.compile(r"^[0-9a-f]{7,39}$")
#: Characters git refuses in a ref name (``git check-ref-format``), and so does the client.
REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")
#: Folders no commit may write into (huggingface_hub's ``FORBIDDEN_FOLDERS``).
FORBIDDEN_FOLDERS = (".git", ".cache")
#: How often a commit without ``parentCommit`` is re-applied when others keep winning.
COMMIT_ATTEMPTS = 50
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
DEFAULT_BRANCH = "main"


@dataclass(frozen=True)
class Operation:
    """One change in a commit: ``add`` (with its tree entry), ``delete`` or ``delete_folder``."""

    kind: str
    path: str
    entry: dict[str, Any] | None = None


def repo_not_found(repo_id: str) -> HubNotFoundError:
    """The one answer for a missing (or hidden) repo. The message is huggingface.co's own
    words, which the client finds in its message already and so does not repeat; the id
    travels as ``repo_id``."""
    return HubNotFoundError("Repository not found", error_code="RepoNotFound", repo_id=repo_id)


def not_found_entry(path: str) -> HubNotFoundError:
    return HubNotFoundError(f"Entry not found: {path}", error_code="EntryNotFound")


def commit_date(commit: Commit) -> str:
    """A commit's time as the client parses it (ISO 8601, ``Z`` for UTC)."""
    created = commit.created_at
    return (
        created.isoformat().replace("+00:00", "Z") if created.tzinfo else created.isoformat() + "Z"
    )


def get_repo(session: Session, repo_type: str, namespace: str, name: str) -> Repo:
    """The repo of that type and id; ids compare case-insensitively, as on huggingface.co
    (``Org/Model`` and ``org/model`` name one repo)."""
    repo = session.scalar(
        select(Repo).where(
            Repo.repo_type == repo_type,
            func.lower(Repo.namespace) == namespace.lower(),
            func.lower(Repo.name) == name.lower(),
        )
    )
    if repo is None:
        raise repo_not_found(f"{namespace}/{name}")
    return repo


def split_repo_id(repo_id: str) -> tuple[str, str]:
    """``namespace/name`` -> (namespace, name); 400 for anything else."""
    namespace, _, name = repo_id.partition("/")
    if not NAME_RE.match(namespace) or not NAME_RE.match(name):
        raise HubError(f"invalid repo id {repo_id!r}; expected namespace/name", repo_id=repo_id)
    return namespace, name


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def create_repo(
    session: Session, repo_type: str, namespace: str, name: str, *, private: bool, author: str
) -> Repo:
    """Create a repo with an initial commit (a .gitattributes, as huggingface.co does)."""
    if repo_type not in REPO_TYPES:
        raise HubError(f"unknown repo type {repo_type!r}")
    if not NAME_RE.match(name) or not NAME_RE.match(namespace):
        raise HubError(f"invalid repo name {namespace}/{name}")
    try:
        get_repo(session, repo_type, namespace, name)
    except HubNotFoundError:
        pass
    else:
        raise RepoExistsError(f"You already created this {repo_type} repo")
    repo = Repo(repo_type=repo_type, namespace=namespace, name=name, private=private)
    session.add(repo)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise RepoExistsError(f"You already created this {repo_type} repo") from exc
    sha, content = initial_blob()
    tree = {".gitattributes": tree_entry(sha, len(content), lfs=False, content=content)}
    when = now_iso()
    oid = commit_oid(None, tree, "initial commit", author, when)
    session.add(
        Commit(
            repo_pk=repo.id,
            oid=oid,
            parent_oid=None,
            title="initial commit",
            message="",
            author=author,
            tree_json=json.dumps(tree),
            created_at=datetime.fromisoformat(when.replace("Z", "+00:00")),
        )
    )
    session.add(Ref(repo_pk=repo.id, kind="branch", name=DEFAULT_BRANCH, commit_oid=oid))
    session.commit()
    return repo


def initial_blob() -> tuple[str, bytes]:
    """sha256 and bytes of the .gitattributes every new repo starts with."""
    content = GITATTRIBUTES.encode()
    return hashlib.sha256(content).hexdigest(), content


def strip_ref(revision: str) -> tuple[str | None, str]:
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag"), ("refs/pr/", "pr")):
        if revision.startswith(prefix):
            return kind, revision[len(prefix) :]
    return None, revision


def find_ref(session: Session, repo: Repo, kind: str, name: str) -> Ref | None:
    return session.scalar(
        select(Ref).where(Ref.repo_pk == repo.id, Ref.kind == kind, Ref.name == name)
    )


def get_commit(session: Session, repo: Repo, oid: str) -> Commit | None:
    return session.scalar(select(Commit).where(Commit.repo_pk == repo.id, Commit.oid == oid))


def resolve_revision(session: Session, repo: Repo, revision: str | None) -> Commit:
    """A branch, tag (optionally ``refs/heads/``, ``refs/tags/``) or commit id -> commit."""
    revision = revision or DEFAULT_BRANCH
    if revision == "HEAD":  # the default branch, as in git
        revision = DEFAULT_BRANCH
    kind, name = strip_ref(revision)
    for k in (kind,) if kind else ("branch", "tag"):
        ref = find_ref(session, repo, k, name)
        if ref is not None:
            commit = get_commit(session, repo, ref.commit_oid)
            if commit is not None:
                return commit
    if kind is None and COMMIT_RE.match(revision):
        commit = get_commit(session, repo, revision)
        if commit is not None:
            return commit
    if kind is None and SHORT_COMMIT_RE.match(revision):
        found = list(
            session.scalars(
                select(Commit)
                .where(Commit.repo_pk == repo.id, Commit.oid.startswith(revision))
                .limit(2)
            )
        )
        if len(found) == 1:
            return found[0]
    raise HubNotFoundError(f"Invalid rev id: {revision}", error_code="RevisionNotFound")


def tree_of(commit: Commit) -> dict[str, dict[str, Any]]:
    return json.loads(commit.tree_json)


class InvalidPathError(HubError):
    """A commit names a path no repo may hold; ``path`` is it (422, as huggingface.co)."""

    status = 422

    def __init__(self, path: str) -> None:
        super().__init__(f"Invalid path in commit: {path!r}")
        self.path = path


class InvalidRefNameError(HubError):
    """A branch or tag name git would refuse; ``name`` is it."""

    status = 400

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"Invalid {kind} name {name!r}")
        self.kind = kind
        self.name = name


def apply_commit(
    session: Session,
    repo: Repo,
    branch: str,
    operations: list[Operation],
    *,
    title: str,
    message: str,
    author: str,
    parent_commit: str | None,
    git_raw: bytes | None = None,
) -> Commit:
    """Apply ``operations`` on top of ``branch`` atomically (see the module docstring).

    Without ``parent_commit`` a lost race is retried on the new head (up to
    ``COMMIT_ATTEMPTS`` times); with it, it is refused (412). ``git_raw`` is a pushed git
    commit object, kept as is (its id is the commit's); it needs ``parent_commit``.
    """
    assert git_raw is None or parent_commit, "a pushed commit names its parent"
    for path in {op.path for op in operations}:
        check_path(path)
    for _attempt in range(COMMIT_ATTEMPTS):
        committed = _try_commit(
            session,
            repo,
            branch,
            operations,
            title=title,
            message=message,
            author=author,
            parent_commit=parent_commit,
            git_raw=git_raw,
        )
        if committed is not None:
            return committed
        if parent_commit:
            break
    raise HubConflictError(
        f"branch {strip_ref(branch)[1]} moved while committing; refresh and try again",
        status=412,
    )


def check_path(path: str) -> None:
    """Refuse a path in a commit that huggingface_hub refuses too: absolute, empty, a
    ``.``/``..`` segment (by either slash), or inside ``.git``/``.cache``."""
    parts = re.split(r"[/\\]", path)
    if (
        not path
        or path.startswith("/")
        or "\x00" in path
        or any(part in (".", "..") for part in parts)
        or any(part in FORBIDDEN_FOLDERS for part in parts)
    ):
        raise InvalidPathError(path)


def _try_commit(
    session: Session,
    repo: Repo,
    branch: str,
    operations: list[Operation],
    *,
    title: str,
    message: str,
    author: str,
    parent_commit: str | None,
    git_raw: bytes | None = None,
) -> Commit | None:
    """One attempt of ``apply_commit``: the new commit, or None when the branch moved."""
    kind, name = strip_ref(branch)
    if kind == "tag":
        raise HubError("cannot commit to a tag", status=400)
    ref = find_ref(session, repo, "pr" if kind == "pr" else "branch", name)
    if ref is None:
        raise HubNotFoundError(f"Invalid rev id: {branch}", error_code="RevisionNotFound")
    head = ref.commit_oid
    if parent_commit and parent_commit != head:
        raise HubConflictError(
            "The branch was updated since you opened this page. Please refresh and try again. "
            f"(parent {parent_commit} is not the head {head} of {name})",
            status=412,
        )
    head_commit = get_commit(session, repo, head)
    assert head_commit is not None
    tree = tree_of(head_commit)
    for op in operations:
        if op.kind == "add":
            assert op.entry is not None
            tree[op.path] = op.entry
        elif op.kind == "delete":
            inside = [p for p in tree if p.startswith(op.path.rstrip("/") + "/")]
            if op.path in tree:
                del tree[op.path]
            elif inside:  # a folder named without its trailing "/"
                for path in inside:
                    del tree[path]
            else:
                raise HubNotFoundError(f"file {op.path} does not exist", error_code="EntryNotFound")
        elif op.kind == "delete_folder":
            prefix = op.path.rstrip("/") + "/"
            for path in [p for p in tree if p.startswith(prefix)]:
                del tree[path]
    if git_raw is None:
        when = now_iso()
        oid = commit_oid(head, tree, title, author, when, message)
    else:
        pushed_tree, parents, when = pushed_header(git_raw)
        if parents != [head] or pushed_tree != git_trees(tree)[0]:
            raise HubError(
                f"pushed commit {git_object_id('commit', git_raw)} does not describe the "
                f"tree its changes build on {head}",
                status=422,
            )
        oid = git_object_id("commit", git_raw)
    session.add(
        Commit(
            repo_pk=repo.id,
            oid=oid,
            parent_oid=head,
            title=title,
            message=message,
            author=author,
            tree_json=json.dumps(tree, sort_keys=True),
            created_at=datetime.fromisoformat(when.replace("Z", "+00:00")),
            git_raw=git_raw,
        )
    )
    try:
        moved: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(Ref).where(Ref.id == ref.id, Ref.commit_oid == head).values(commit_oid=oid)
        )
        if moved.rowcount != 1:
            session.rollback()
            return None
        session.commit()
    except OperationalError as exc:
        # SQLite refuses a write whose read snapshot another writer made stale ("database
        # is locked"): the same lost race as rowcount 0, reported differently.
        session.rollback()
        if "locked" not in str(exc):
            raise
        return None
    committed = get_commit(session, repo, oid)
    assert committed is not None
    return committed


def create_ref(
    session: Session,
    repo: Repo,
    kind: str,
    name: str,
    start: str | None,
    message: str | None = None,
) -> Ref:
    """Create a branch or tag at ``start`` (default: main's head); 409 if it exists."""
    commit = resolve_revision(session, repo, start)  # a missing start is a 404 first
    check_ref_name(kind, name)
    full = ("refs/heads/" if kind == "branch" else "refs/tags/") + name
    if find_ref(session, repo, kind, name) is not None:
        raise HubConflictError(f"Reference {full} already exists")
    ref = Ref(repo_pk=repo.id, kind=kind, name=name, commit_oid=commit.oid, message=message)
    session.add(ref)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise HubConflictError(f"Reference {full} already exists") from exc
    return ref


def check_ref_name(kind: str, name: str) -> None:
    """Refuse names ``git check-ref-format`` refuses (spaces, ``..``, ``~^:?*[\\``, a
    leading ``-`` or ``/``, a trailing ``/``, ``.`` or ``.lock``), and ``HEAD``."""
    if (
        not name
        or REF_FORBIDDEN.search(name)
        or name.startswith(("/", "-", "."))
        or name.endswith(("/", ".", ".lock"))
        or "/." in name
        or name == "HEAD"
    ):
        raise InvalidRefNameError(kind, name)


def delete_ref(session: Session, repo: Repo, kind: str, name: str) -> None:
    ref = find_ref(session, repo, kind, name)
    if kind == "branch" and name == DEFAULT_BRANCH:
        raise HubError(f"Cannot delete refs/heads/{name}: it is the default branch", status=403)
    if ref is None:
        raise HubNotFoundError(f"Invalid rev id: {name}", error_code="RevisionNotFound")
    session.delete(ref)
    session.commit()


def list_refs(session: Session, repo: Repo) -> list[Ref]:
    return list(session.scalars(select(Ref).where(Ref.repo_pk == repo.id).order_by(Ref.name)))


def history(session: Session, repo: Repo, head: Commit, limit: int | None = None) -> list[Commit]:
    """Commits from ``head`` back to the root, newest first."""
    commits = {c.oid: c for c in session.scalars(select(Commit).where(Commit.repo_pk == repo.id))}
    out: list[Commit] = []
    current: Commit | None = head
    while current is not None and (limit is None or len(out) < limit):
        out.append(current)
        current = commits.get(current.parent_oid) if current.parent_oid else None
    return out


def last_changes(session: Session, repo: Repo, head: Commit, paths: list[str]) -> dict[str, Commit]:
    """For each path (a file or a folder), the newest commit from ``head`` back that
    changed it: the first whose tree differs there from its parent's."""
    commits = history(session, repo, head)
    trees = [tree_of(c) for c in commits]

    def at(tree: dict[str, Any], path: str) -> Any:
        if path in tree:
            return tree[path]["oid"]
        prefix = path + "/"
        return sorted((p, e["oid"]) for p, e in tree.items() if p.startswith(prefix))

    out: dict[str, Commit] = {}
    for path in paths:
        for i, commit in enumerate(commits):
            parent = trees[i + 1] if i + 1 < len(trees) else {}
            if at(trees[i], path) != at(parent, path):
                out[path] = commit
                break
    return out


def move_repo(session: Session, repo: Repo, namespace: str, name: str) -> Repo:
    """Rename or transfer ``repo`` to ``namespace/name`` (409 if that exists)."""
    if not NAME_RE.match(name) or not NAME_RE.match(namespace):
        raise HubError(f"invalid repo name {namespace}/{name}")
    try:
        get_repo(session, repo.repo_type, namespace, name)
    except HubNotFoundError:
        pass
    else:
        raise HubConflictError(
            f"A {repo.repo_type} repository called {namespace}/{name} already exists"
        )
    repo.namespace, repo.name = namespace, name
    session.commit()
    return repo


def squash(session: Session, repo: Repo, branch: str, *, title: str, author: str) -> Commit:
    """``super_squash_history``: one parentless commit holding the branch head's files;
    the branch moves to it (compare-and-swap), other refs keep the old history."""
    _, name = strip_ref(branch)
    ref = find_ref(session, repo, "branch", name)
    if ref is None:
        raise HubNotFoundError(f"Invalid rev id: {branch}", error_code="RevisionNotFound")
    head = get_commit(session, repo, ref.commit_oid)
    assert head is not None
    when = now_iso()
    tree = tree_of(head)
    oid = commit_oid(None, tree, title, author, when)
    session.add(
        Commit(
            repo_pk=repo.id,
            oid=oid,
            parent_oid=None,
            title=title,
            message="",
            author=author,
            tree_json=head.tree_json,
            created_at=datetime.fromisoformat(when.replace("Z", "+00:00")),
        )
    )
    moved: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Ref).where(Ref.id == ref.id, Ref.commit_oid == head.oid).values(commit_oid=oid)
    )
    if moved.rowcount != 1:
        session.rollback()
        raise HubConflictError(f"branch {name} moved while squashing; try again", status=412)
    session.commit()
    squashed = get_commit(session, repo, oid)
    assert squashed is not None
    return squashed


def open_pull_request(session: Session, repo: Repo, base: str, *, title: str) -> Ref:
    """A pull request as huggingface.co exposes it to git: a ref ``refs/pr/N`` (the next
    number) starting at ``base``'s head, which commits with ``create_pr`` then land on.
    Its ``message`` is the title. There is no discussion thread and no merge here.
    ``base`` must be a branch (a commit id or tag is a 404, as on huggingface.co)."""
    kind, name = strip_ref(base)
    branch = find_ref(session, repo, "branch", name) if kind in (None, "branch") else None
    if branch is None:
        raise HubNotFoundError(
            f"Invalid rev id: {base} (a pull request starts from a branch)",
            error_code="RevisionNotFound",
        )
    start = resolve_revision(session, repo, f"refs/heads/{name}")
    for _attempt in range(COMMIT_ATTEMPTS):
        numbers = [int(r.name) for r in list_refs(session, repo) if r.kind == "pr"]
        ref = Ref(
            repo_pk=repo.id,
            kind="pr",
            name=str(max(numbers, default=0) + 1),
            commit_oid=start.oid,
            message=title,
        )
        session.add(ref)
        try:
            session.commit()
        except IntegrityError:  # another request took that number
            session.rollback()
            continue
        return ref
    raise HubConflictError("could not number a new pull request; try again", status=409)
