"""Repos: create, delete, move, settings, info at a revision, trees and paths-info, and the
README check ``upload_folder`` asks for first."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from tether.hub.server import access, repos
from tether.hub.server.db import Commit, Repo
from tether.hub.server.deps import (
    DB,
    AdminRepo,
    Body,
    Caller,
    Hub,
    ReadableRepo,
    WritableRepo,
    json_body,
)
from tether.hub.server.errors import RepoExistsError
from tether.hub.server.schemas import (
    CreatedRepo,
    EntryLfs,
    LastCommit,
    MoveRequest,
    RepoInfo,
    RepoRequest,
    RepoSettings,
    Sibling,
    SiblingLfs,
    TreeEntry,
    YamlCheck,
    YamlProblem,
    YamlRequest,
)
from tether.hub.server.storage import receive_to_temp

router = APIRouter()
API_REPO = "/api/{repo_type:plural}/{namespace:segment}/{name:segment}"
GET = ["GET", "HEAD"]
Tree = dict[str, dict[str, Any]]


def _flag(value: str | None) -> bool:
    return value in ("1", "true", "True")


def file_entry(path: str, entry: dict[str, Any]) -> TreeEntry:
    lfs = None
    if entry["lfs"]:
        lfs = EntryLfs(oid=entry["sha256"], size=entry["size"], pointer_size=entry["pointer_size"])
    return TreeEntry(type="file", oid=entry["oid"], size=entry["size"], path=path, lfs=lfs)


def dir_entry(path: str, tree: Tree) -> TreeEntry:
    """A folder; its ``oid`` is a hash of what it holds, so it changes when they do."""
    inside = sorted(p + e["oid"] for p, e in tree.items() if p.startswith(path + "/"))
    oid = hashlib.sha1("\n".join(inside).encode()).hexdigest()
    return TreeEntry(type="directory", oid=oid, size=0, path=path)


def list_tree(tree: Tree, path: str, recursive: bool) -> list[TreeEntry]:
    """Entries under ``path`` (a folder, or '' for the root), like git ls-tree."""
    prefix = path.strip("/") + "/" if path.strip("/") else ""
    if prefix and prefix.rstrip("/") in tree:
        return [file_entry(prefix.rstrip("/"), tree[prefix.rstrip("/")])]
    files = [p for p in sorted(tree) if p.startswith(prefix)]
    if prefix and not files:
        raise repos.not_found_entry(path)
    out: list[TreeEntry] = []
    dirs: set[str] = set()
    for p in files:
        rest = p[len(prefix) :].split("/")
        for depth in range(1, len(rest)):
            d = prefix + "/".join(rest[:depth])
            if d not in dirs and (recursive or depth == 1):
                dirs.add(d)
                out.append(dir_entry(d, tree))
            if not recursive:
                break
        if recursive or len(rest) == 1:
            out.append(file_entry(p, tree[p]))
    return out


@router.post("/api/validate-yaml", response_model=YamlCheck)
def validate_yaml(payload: Annotated[YamlRequest, json_body(YamlRequest)]) -> JSONResponse:
    """Check a README's YAML front matter parses to a mapping (400 with the problems)."""
    import yaml

    content = payload.content.lstrip()
    errors, warnings = [], []
    data = None
    if content.startswith("---"):
        front = content.split("---", 2)[1] if content.count("---") >= 2 else ""
        try:
            data = yaml.safe_load(front)
            if data is not None and not isinstance(data, dict):
                errors.append(YamlProblem(message="metadata must be a YAML mapping"))
        except yaml.YAMLError as exc:
            errors.append(YamlProblem(message=f"invalid YAML: {exc}"))
    if (
        isinstance(data, dict)
        and "model-index" in data
        and not isinstance(data["model-index"], list)
    ):
        errors.append(YamlProblem(message='"model-index" must be an array'))
    if not data and not errors:
        warnings.append(YamlProblem(message="empty or missing yaml metadata in repo card"))
    check = YamlCheck(errors=errors, warnings=warnings)
    return JSONResponse(check.model_dump(by_alias=True), status_code=400 if errors else 200)


@router.post("/api/repos/create", response_model=CreatedRepo)
def create_repo(
    hub: Hub, session: DB, caller: Caller, payload: Annotated[RepoRequest, json_body(RepoRequest)]
) -> CreatedRepo:
    """Create a repo (409 with its ``url`` when it exists, for ``exist_ok=True``)."""
    namespace = payload.organization or (caller.user if caller else "")
    identity = access.require(session, caller, namespace, access.Level.WRITE)
    repo_type = payload.type or "model"
    sha, content = repos.initial_blob()
    if not hub.store.exists(sha):
        path, _, _ = receive_to_temp(iter([content]), hub.config.upload_dir)
        hub.store.put_file(sha, path)
    try:
        repo = repos.create_repo(
            session,
            repo_type,
            namespace,
            payload.name,
            private=payload.wants_private,
            author=identity.user,
        )
    except RepoExistsError as exc:  # the url names the repo as it is spelled
        exc.url = hub.repo_url(repos.get_repo(session, repo_type, namespace, payload.name))
        raise
    return CreatedRepo(url=hub.repo_url(repo), name=repo.repo_id, id=repo.repo_id)


@router.delete("/api/repos/delete")
def delete_repo(
    session: DB, caller: Caller, payload: Annotated[RepoRequest, json_body(RepoRequest)]
) -> dict[str, Any]:
    """Delete a repo: admin in its namespace (a user in their own)."""
    namespace = payload.organization or (caller.user if caller else "")
    access.require(session, caller, namespace, access.Level.ADMIN)
    repo = repos.get_repo(session, payload.type or "model", namespace, payload.name)
    session.delete(repo)
    session.commit()
    return {}


@router.post("/api/repos/move")
def move_repo(
    session: DB, caller: Caller, payload: Annotated[MoveRequest, json_body(MoveRequest)]
) -> dict[str, Any]:
    """``move_repo``: rename a repo or move it to another namespace, as admin of both."""
    (from_ns, from_name), (to_ns, to_name) = (
        repos.split_repo_id(payload.from_repo),
        repos.split_repo_id(payload.to_repo),
    )
    repo = repos.get_repo(session, payload.type or "model", from_ns, from_name)
    access.require_readable(session, caller, repo)
    access.require(session, caller, from_ns, access.Level.ADMIN)
    access.require(session, caller, to_ns, access.Level.ADMIN)
    repos.move_repo(session, repo, to_ns, to_name)
    return {}


@router.api_route(API_REPO + "/auth-check", methods=GET)
def auth_check(repo: ReadableRepo) -> dict[str, Any]:
    """``auth_check``: 200 when the caller may read the repo (else the usual 401/404)."""
    return {}


@router.api_route(API_REPO + "/auth-check/write", methods=GET)
def auth_check_write(repo: WritableRepo) -> dict[str, Any]:
    return {}


@router.put(API_REPO + "/settings", response_model=RepoSettings)
def settings(
    session: DB, repo: AdminRepo, payload: Annotated[RepoRequest, json_body(RepoRequest)]
) -> RepoSettings:
    if payload.sets_visibility:
        repo.private = payload.wants_private
    session.commit()
    return RepoSettings(private=repo.private)


def _info(session: DB, request: Request, repo: Repo, revision: str | None) -> RepoInfo:
    commit = repos.resolve_revision(session, repo, revision)
    tree = repos.tree_of(commit)
    blobs = _flag(request.query_params.get("blobs"))
    siblings = []
    for path in sorted(tree):
        entry = tree[path]
        sibling = Sibling(rfilename=path)
        if blobs:
            sibling.size, sibling.blob_id = entry["size"], entry["oid"]
            if entry["lfs"]:
                sibling.lfs = SiblingLfs(
                    sha256=entry["sha256"], size=entry["size"], pointer_size=entry["pointer_size"]
                )
        siblings.append(sibling)
    created = repo.created_at.isoformat()
    return RepoInfo(
        mongo_id=f"{repo.id:024x}",
        id=repo.repo_id,
        model_id=repo.repo_id,
        author=repo.namespace,
        sha=commit.oid,
        last_modified=repos.commit_date(commit),
        created_at=created if created.endswith("Z") or "+" in created else created + "Z",
        private=repo.private,
        visibility="private" if repo.private else "public",
        siblings=siblings,
    )


@router.api_route(API_REPO, methods=GET, response_model=RepoInfo)
def info(session: DB, request: Request, repo: ReadableRepo) -> RepoInfo:
    """``model_info`` / ``repo_info`` at the main branch."""
    return _info(session, request, repo, None)


@router.api_route(API_REPO + "/revision/{revision:segment}", methods=GET, response_model=RepoInfo)
def info_at(session: DB, request: Request, repo: ReadableRepo, revision: str) -> RepoInfo:
    """``model_info`` / ``repo_info`` at a branch, tag or commit."""
    return _info(session, request, repo, revision)


@router.api_route(
    API_REPO + "/tree/{revision:segment}", methods=GET, response_model=list[TreeEntry]
)
def tree_root(session: DB, request: Request, repo: ReadableRepo, revision: str) -> list[TreeEntry]:
    return tree(session, request, repo, revision, "")


@router.api_route(
    API_REPO + "/tree/{revision:segment}/{path:filepath}",
    methods=GET,
    response_model=list[TreeEntry],
)
def tree(
    session: DB, request: Request, repo: ReadableRepo, revision: str, path: str
) -> list[TreeEntry]:
    """``list_repo_tree``: one folder, or everything below it with ``recursive=1``; with
    ``expand=1`` each entry carries the last commit that changed it."""
    commit = repos.resolve_revision(session, repo, revision)
    recursive = _flag(request.query_params.get("recursive"))
    entries = list_tree(repos.tree_of(commit), path, recursive)
    if _flag(request.query_params.get("expand")):
        add_last_commits(session, repo, commit, entries)
    return entries


def add_last_commits(session: DB, repo: Repo, head: Commit, entries: list[TreeEntry]) -> None:
    """Set each entry's ``lastCommit`` (what ``expand`` asks for)."""
    changed = repos.last_changes(session, repo, head, [e.path for e in entries])
    for entry in entries:
        last = changed.get(entry.path)
        if last is not None:
            entry.last_commit = LastCommit(
                id=last.oid, title=last.title, date=repos.commit_date(last)
            )


@router.post(API_REPO + "/paths-info/{revision:segment}", response_model=list[TreeEntry])
def paths_info(
    session: DB, request: Request, repo: ReadableRepo, revision: str, body: Body
) -> list[TreeEntry]:
    """What is at each of ``paths`` (sent as JSON or as a form); missing ones are left out."""
    commit = repos.resolve_revision(session, repo, revision)
    tree = repos.tree_of(commit)
    if request.headers.get("content-type", "").startswith("application/json"):
        form = json.loads(body or b"{}")
        paths, expand = form.get("paths", []), str(form.get("expand", ""))
    else:
        fields = parse_qs(body.decode())
        paths, expand = fields.get("paths", []), (fields.get("expand") or [""])[0]
    out = []
    for path in paths:
        path = path.strip("/")
        if path in tree:
            out.append(file_entry(path, tree[path]))
        elif any(q.startswith(path + "/") for q in tree):
            out.append(dir_entry(path, tree))
    if _flag(expand):
        add_last_commits(session, repo, commit, out)
    return out
