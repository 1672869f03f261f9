"""Commits: history, the pre-upload question (LFS or regular), and the commit itself.

The commit body is NDJSON (a header line, then one line per operation), so it is read
raw; each operation is checked before any of it is applied (see repos.apply_commit).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from typing import Annotated, Any

from fastapi import APIRouter
from starlette.requests import Request

from tether.errors import HubError, HubIntegrityError, HubNotFoundError
from tether.hub.server import repos
from tether.hub.server.db import has_object
from tether.hub.server.deps import DB, Body, Hub, ReadableRepo, WritableRepo, Writer, json_body
from tether.hub.server.gitobjects import is_lfs_path, tree_entry
from tether.hub.server.patterns import ignored, lfs_tracked
from tether.hub.server.routers.repos import API_REPO, GET
from tether.hub.server.schemas import (
    Author,
    CommitAnswer,
    CommitEntry,
    Formatted,
    PreuploadAnswer,
    PreuploadRequest,
    SquashAnswer,
    SquashRequest,
    UploadMode,
)
from tether.hub.server.storage import receive_to_temp

router = APIRouter()


@router.api_route(
    API_REPO + "/commits/{revision:segment}", methods=GET, response_model=list[CommitEntry]
)
def commits(session: DB, request: Request, repo: ReadableRepo, revision: str) -> list[CommitEntry]:
    """``list_repo_commits``: from ``revision`` back to the first commit, newest first;
    ``expand[]=formatted`` adds title and message as HTML (escaped text here)."""
    head = repos.resolve_revision(session, repo, revision)
    formatted = "formatted" in request.query_params.getlist("expand[]")
    return [
        CommitEntry(
            id=c.oid,
            title=c.title,
            message=c.message,
            authors=[Author(user=c.author)],
            date=repos.commit_date(c),
            formatted=Formatted(title=html.escape(c.title), message=html.escape(c.message))
            if formatted
            else None,
        )
        for c in repos.history(session, repo, head)
    ]


@router.post(API_REPO + "/super-squash/{branch:segment}", response_model=SquashAnswer)
def super_squash(
    session: DB,
    repo: WritableRepo,
    identity: Writer,
    branch: str,
    payload: Annotated[SquashRequest, json_body(SquashRequest)],
) -> SquashAnswer:
    """``super_squash_history``: the branch's history becomes one commit."""
    title = payload.message or f"Super-squash branch '{branch}'"
    new = repos.squash(session, repo, branch, title=title, author=identity.user)
    return SquashAnswer(commit_id=new.oid)


@router.post(API_REPO + "/preupload/{revision:segment}", response_model=PreuploadAnswer)
def preupload(
    hub: Hub,
    session: DB,
    repo: WritableRepo,
    revision: str,
    payload: Annotated[PreuploadRequest, json_body(PreuploadRequest)],
) -> PreuploadAnswer:
    """For each file: LFS/Xet or regular (by name, size, a sample of its bytes, and the
    repo's ``.gitattributes``), whether the repo's ``.gitignore`` (or the one this commit
    adds) skips it, and the ``oid`` the path holds at ``revision`` (none for a new file,
    or a branch that does not exist yet)."""
    try:
        tree = repos.tree_of(repos.resolve_revision(session, repo, revision))
    except HubNotFoundError:
        tree = {}
    attributes = _small_text(hub, tree.get(".gitattributes"))
    gitignore = payload.git_ignore
    if gitignore is None:
        gitignore = _small_text(hub, tree.get(".gitignore"))
    files = []
    for item in payload.files:
        current = tree.get(item.path)
        sample = base64.b64decode(item.sample or "")
        lfs = is_lfs_path(item.path, item.size, sample) or lfs_tracked(attributes, item.path)
        oid = None
        if current is not None:
            oid = current["sha256"] if current["lfs"] else current["oid"]
        files.append(
            UploadMode(
                path=item.path,
                upload_mode="lfs" if lfs else "regular",
                should_ignore=ignored(gitignore, item.path),
                oid=oid,
            )
        )
    return PreuploadAnswer(files=files)


def _small_text(hub: Hub, entry: dict[str, Any] | None) -> str:
    """A regular file's text (``.gitattributes``, ``.gitignore``), '' if absent or LFS."""
    if entry is None or entry["lfs"] or not entry["size"] or entry["size"] > 1024 * 1024:
        return ""
    data = b"".join(hub.store.open_range(entry["sha256"], 0, entry["size"] - 1))
    return data.decode("utf-8", errors="replace")


@router.post(API_REPO + "/commit/{revision:segment}", response_model=CommitAnswer)
def commit(
    hub: Hub,
    session: DB,
    request: Request,
    repo: WritableRepo,
    identity: Writer,
    revision: str,
    body: Body,
) -> CommitAnswer:
    """Apply the NDJSON operations on top of ``revision`` in one commit.

    LFS files must have been uploaded to this repo (by LFS or Xet) first: knowing a
    sha256 does not grant its bytes (422 otherwise).
    """
    create_pr = request.query_params.get("create_pr") in ("1", "true", "True")
    header: dict[str, Any] = {}
    operations: list[repos.Operation] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        key, value = item.get("key"), item.get("value", {})
        if key == "header":
            header = value
        elif key == "file":
            content = base64.b64decode(value["content"])
            sha = hashlib.sha256(content).hexdigest()
            if not hub.store.exists(sha):
                tmp, _, _ = receive_to_temp(iter([content]), hub.config.upload_dir)
                hub.store.put_file(sha, tmp)
            operations.append(
                repos.Operation(
                    "add", value["path"], tree_entry(sha, len(content), lfs=False, content=content)
                )
            )
        elif key == "lfsFile":
            # A CommitOperationCopy of an LFS file names the source's sha256 and no size.
            sha = value["oid"]
            size = int(value["size"]) if "size" in value else None
            if hub.store.exists(sha) and size is None:
                size = hub.store.size(sha)
            if (
                size is None
                or not hub.store.exists(sha)
                or hub.store.size(sha) != size
                or not has_object(session, repo.id, sha)
            ):
                raise HubIntegrityError(
                    f"LFS object {sha} ({size} bytes) for {value['path']} was not uploaded"
                )
            operations.append(
                repos.Operation("add", value["path"], tree_entry(sha, size, lfs=True))
            )
        elif key == "deletedFile":
            operations.append(repos.Operation("delete", value["path"]))
        elif key == "deletedFolder":
            operations.append(repos.Operation("delete_folder", value["path"]))
        else:
            raise HubError(f"unsupported commit operation {key!r}", status=400)
    title = header.get("summary") or "Upload files"
    pr_url = None
    if create_pr:  # the commit lands on a new refs/pr/N started at the revision's head
        pr = repos.open_pull_request(session, repo, revision, title=title)
        revision, pr_url = f"refs/pr/{pr.name}", f"{hub.repo_url(repo)}/discussions/{pr.name}"
    try:
        new = repos.apply_commit(
            session,
            repo,
            revision,
            operations,
            title=title,
            message=header.get("description") or "",
            author=identity.user,
            parent_commit=header.get("parentCommit"),
        )
    except HubError:
        if create_pr:  # no empty pull request left behind
            repos.delete_ref(session, repo, "pr", revision.rsplit("/", 1)[1])
        raise
    return CommitAnswer(
        commit_url=f"{hub.repo_url(repo)}/commit/{new.oid}",
        commit_oid=new.oid,
        pull_request_url=pr_url,
    )
