"""The JSON API under /api: identity, repos, revisions, trees, refs, commits.

Response shapes follow what huggingface_hub's HfApi parses (ModelInfo, RepoFile, GitRefs,
GitCommitInfo, CommitInfo), field for field where the client reads them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tether.errors import HubAuthError, HubConflictError, HubError, HubIntegrityError
from tether.hub.server import repos
from tether.hub.server.db import Commit, Repo, has_object
from tether.hub.server.gitobjects import is_lfs_path, tree_entry
from tether.hub.server.router import API_REPO, Router
from tether.hub.server.state import (
    TYPE_FROM_PLURAL,
    HubState,
    not_found_entry,
    repo_params,
    require_write,
)
from tether.hub.server.storage import receive_to_temp

SyncHandler = Callable[..., Response]


def sync_route(
    router: Router, hub: HubState, method: str, pattern: str
) -> Callable[[SyncHandler], SyncHandler]:
    """Register a blocking handler ``fn(session, request, body, **params)``.

    The body is read on the event loop, the handler (database work) runs in a worker thread
    with its own session.
    """

    def decorate(fn: SyncHandler) -> SyncHandler:
        async def handler(request: Request, **params: Any) -> Response:
            body = await request.body()

            def run() -> Response:
                with hub.session() as session:
                    return fn(session, request, body, **params)

            return await run_in_threadpool(run)

        router.add(method, pattern)(handler)
        return fn

    return decorate


def iso(commit: Commit) -> str:
    return (
        commit.created_at.isoformat().replace("+00:00", "Z")
        if commit.created_at.tzinfo
        else commit.created_at.isoformat() + "Z"
    )


def commit_json(commit: Commit) -> dict[str, Any]:
    return {
        "id": commit.oid,
        "title": commit.title,
        "message": commit.message,
        "authors": [{"user": commit.author, "avatar": None}],
        "date": iso(commit),
    }


def file_json(path: str, entry: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "file", "oid": entry["oid"], "size": entry["size"], "path": path}
    if entry["lfs"]:
        out["lfs"] = {
            "oid": entry["sha256"],
            "size": entry["size"],
            "pointerSize": entry["pointer_size"],
        }
    return out


def dir_json(path: str, tree: dict[str, dict[str, Any]]) -> dict[str, Any]:
    inside = sorted(p + e["oid"] for p, e in tree.items() if p.startswith(path + "/"))
    oid = hashlib.sha1("\n".join(inside).encode()).hexdigest()
    return {"type": "directory", "oid": oid, "size": 0, "path": path}


def list_tree(tree: dict[str, dict[str, Any]], path: str, recursive: bool) -> list[dict[str, Any]]:
    """Entries under ``path`` (a folder, or '' for the root), like git ls-tree."""
    prefix = path.strip("/") + "/" if path.strip("/") else ""
    if prefix and prefix.rstrip("/") in tree:
        return [file_json(prefix.rstrip("/"), tree[prefix.rstrip("/")])]
    files = [p for p in sorted(tree) if p.startswith(prefix)]
    if prefix and not files:
        raise not_found_entry(path)
    out: list[dict[str, Any]] = []
    dirs: set[str] = set()
    for p in files:
        rest = p[len(prefix) :].split("/")
        for depth in range(1, len(rest)):
            d = prefix + "/".join(rest[:depth])
            if d not in dirs and (recursive or depth == 1):
                dirs.add(d)
                out.append(dir_json(d, tree))
            if not recursive:
                break
        if recursive or len(rest) == 1:
            out.append(file_json(p, tree[p]))
    return out


def _is_private(payload: dict[str, Any]) -> bool:
    """Newer clients send ``visibility`` ("private"/"public"), older ones ``private``."""
    if payload.get("visibility") is not None:
        return payload["visibility"] != "public"
    return bool(payload.get("private"))


def register(router: Router, hub: HubState) -> None:
    """Add the /api routes to ``router``."""

    @sync_route(router, hub, "GET", r"/api/whoami-v2")
    def whoami(session: Session, request: Request, body: bytes) -> Response:
        identity = hub.identity(session, request)
        if identity is None:
            raise HubAuthError("Invalid user token. No token in Authorization header.")
        return JSONResponse(
            {
                "type": "user",
                "id": identity.user,
                "name": identity.user,
                "fullname": identity.user,
                "email": None,
                "emailVerified": False,
                "isPro": False,
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": identity.token_name, "role": identity.scope},
                },
            }
        )

    @sync_route(router, hub, "POST", r"/api/validate-yaml")
    def validate_yaml(session: Session, request: Request, body: bytes) -> Response:
        """Check a README's YAML front matter parses to a mapping (upload_folder asks first)."""
        import yaml

        content = json.loads(body or b"{}").get("content", "")
        errors = []
        if content.startswith("---"):
            front = content.split("---", 2)[1] if content.count("---") >= 2 else ""
            try:
                data = yaml.safe_load(front)
                if data is not None and not isinstance(data, dict):
                    errors.append({"message": "metadata must be a YAML mapping"})
            except yaml.YAMLError as exc:
                errors.append({"message": f"invalid YAML: {exc}"})
        return JSONResponse({"errors": errors, "warnings": []}, status_code=400 if errors else 200)

    @sync_route(router, hub, "POST", r"/api/repos/create")
    def create_repo(session: Session, request: Request, body: bytes) -> Response:
        payload = json.loads(body or b"{}")
        identity = hub.identity(session, request)
        namespace = payload.get("organization") or (identity.user if identity else "")
        require_write(identity, namespace)
        assert identity is not None
        repo_type = payload.get("type") or "model"
        name = payload.get("name", "")
        url = hub.repo_url(Repo(repo_type=repo_type, namespace=namespace, name=name))
        sha, content = repos.initial_blob()
        if not hub.store.exists(sha):
            path, _, _ = receive_to_temp(iter([content]), hub.config.upload_dir)
            hub.store.put_file(sha, path)
        try:
            repo = repos.create_repo(
                session,
                repo_type,
                namespace,
                name,
                private=_is_private(payload),
                author=identity.user,
            )
        except HubConflictError as exc:
            return JSONResponse(
                {"error": exc.message, "url": url},
                status_code=409,
                headers={"X-Error-Message": exc.message},
            )
        return JSONResponse({"url": hub.repo_url(repo), "name": repo.repo_id, "id": repo.repo_id})

    @sync_route(router, hub, "DELETE", r"/api/repos/delete")
    def delete_repo(session: Session, request: Request, body: bytes) -> Response:
        payload = json.loads(body or b"{}")
        identity = hub.identity(session, request)
        namespace = payload.get("organization") or (identity.user if identity else "")
        require_write(identity, namespace)
        repo = repos.get_repo(session, payload.get("type") or "model", namespace, payload["name"])
        session.delete(repo)
        session.commit()
        return JSONResponse({})

    @sync_route(router, hub, "PUT", API_REPO + r"/settings")
    def settings(session: Session, request: Request, body: bytes, **p: Any) -> Response:
        repo, _ = hub.writable_repo(session, request, *repo_params(p))
        payload = json.loads(body or b"{}")
        if payload.get("private") is not None or payload.get("visibility") is not None:
            repo.private = _is_private(payload)
        session.commit()
        return JSONResponse({"private": repo.private})

    @sync_route(router, hub, "GET", API_REPO + r"(?:/revision/(?P<rev>[^/]+))?")
    def info(
        session: Session, request: Request, body: bytes, rev: str | None = None, **p: Any
    ) -> Response:
        repo, _ = hub.readable_repo(session, request, *repo_params(p))
        commit = repos.resolve_revision(session, repo, rev)
        tree = repos.tree_of(commit)
        blobs = request.query_params.get("blobs") in ("1", "true", "True")
        siblings = []
        for path in sorted(tree):
            entry: dict[str, Any] = {"rfilename": path}
            if blobs:
                entry["size"] = tree[path]["size"]
                entry["blobId"] = tree[path]["oid"]
                if tree[path]["lfs"]:
                    entry["lfs"] = {
                        "sha256": tree[path]["sha256"],
                        "size": tree[path]["size"],
                        "pointerSize": tree[path]["pointer_size"],
                    }
            siblings.append(entry)
        created = repo.created_at.isoformat()
        return JSONResponse(
            {
                "_id": f"{repo.id:024x}",
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "author": repo.namespace,
                "sha": commit.oid,
                "lastModified": iso(commit),
                "createdAt": created if created.endswith("Z") or "+" in created else created + "Z",
                "private": repo.private,
                "visibility": "private" if repo.private else "public",
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
            }
        )

    def tree_route(
        session: Session, request: Request, body: bytes, rev: str, path: str | None = None, **p: Any
    ) -> Response:
        repo, _ = hub.readable_repo(session, request, *repo_params(p))
        commit = repos.resolve_revision(session, repo, rev)
        recursive = request.query_params.get("recursive") in ("1", "true", "True")
        return JSONResponse(list_tree(repos.tree_of(commit), path or "", recursive))

    sync_route(router, hub, "GET", API_REPO + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?")(tree_route)

    @sync_route(router, hub, "POST", API_REPO + r"/paths-info/(?P<rev>[^/]+)")
    def paths_info(session: Session, request: Request, body: bytes, rev: str, **p: Any) -> Response:
        repo, _ = hub.readable_repo(session, request, *repo_params(p))
        commit = repos.resolve_revision(session, repo, rev)
        tree = repos.tree_of(commit)
        if request.headers.get("content-type", "").startswith("application/json"):
            paths = json.loads(body or b"{}").get("paths", [])
        else:
            paths = parse_qs(body.decode()).get("paths", [])
        out = []
        for path in paths:
            path = path.strip("/")
            if path in tree:
                out.append(file_json(path, tree[path]))
            elif any(q.startswith(path + "/") for q in tree):
                out.append(dir_json(path, tree))
        return JSONResponse(out)

    @sync_route(router, hub, "GET", API_REPO + r"/refs")
    def refs(session: Session, request: Request, body: bytes, **p: Any) -> Response:
        repo, _ = hub.readable_repo(session, request, *repo_params(p))
        out: dict[str, list[dict[str, Any]]] = {"branches": [], "tags": [], "converts": []}
        for ref in repos.list_refs(session, repo):
            prefix = "refs/heads/" if ref.kind == "branch" else "refs/tags/"
            out["branches" if ref.kind == "branch" else "tags"].append(
                {"name": ref.name, "ref": prefix + ref.name, "targetCommit": ref.commit_oid}
            )
        if request.query_params.get("include_prs"):
            out["pullRequests"] = []
        return JSONResponse(out)

    @sync_route(router, hub, "GET", API_REPO + r"/commits/(?P<rev>[^/]+)")
    def commits(session: Session, request: Request, body: bytes, rev: str, **p: Any) -> Response:
        repo, _ = hub.readable_repo(session, request, *repo_params(p))
        head = repos.resolve_revision(session, repo, rev)
        return JSONResponse([commit_json(c) for c in repos.history(session, repo, head)])

    @sync_route(router, hub, "POST", API_REPO + r"/branch/(?P<branch>[^/]+)")
    def create_branch(
        session: Session, request: Request, body: bytes, branch: str, **p: Any
    ) -> Response:
        repo, _ = hub.writable_repo(session, request, *repo_params(p))
        payload = json.loads(body or b"{}")
        repos.create_ref(session, repo, "branch", branch, payload.get("startingPoint"))
        return JSONResponse({})

    @sync_route(router, hub, "DELETE", API_REPO + r"/branch/(?P<branch>[^/]+)")
    def delete_branch(
        session: Session, request: Request, body: bytes, branch: str, **p: Any
    ) -> Response:
        repo, _ = hub.writable_repo(session, request, *repo_params(p))
        repos.delete_ref(session, repo, "branch", branch)
        return JSONResponse({})

    @sync_route(router, hub, "POST", API_REPO + r"/tag/(?P<rev>[^/]+)")
    def create_tag(session: Session, request: Request, body: bytes, rev: str, **p: Any) -> Response:
        repo, _ = hub.writable_repo(session, request, *repo_params(p))
        payload = json.loads(body or b"{}")
        repos.create_ref(
            session, repo, "tag", payload.get("tag", ""), rev, message=payload.get("message")
        )
        return JSONResponse({})

    @sync_route(router, hub, "DELETE", API_REPO + r"/tag/(?P<tag>[^/]+)")
    def delete_tag(session: Session, request: Request, body: bytes, tag: str, **p: Any) -> Response:
        repo, _ = hub.writable_repo(session, request, *repo_params(p))
        repos.delete_ref(session, repo, "tag", tag)
        return JSONResponse({})

    @sync_route(router, hub, "POST", API_REPO + r"/preupload/(?P<rev>[^/]+)")
    def preupload(session: Session, request: Request, body: bytes, rev: str, **p: Any) -> Response:
        hub.writable_repo(session, request, *repo_params(p))
        files = []
        for item in json.loads(body or b"{}").get("files", []):
            sample = base64.b64decode(item.get("sample") or "")
            lfs = is_lfs_path(item["path"], int(item.get("size", 0)), sample)
            files.append(
                {
                    "path": item["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                }
            )
        return JSONResponse({"files": files})

    @sync_route(router, hub, "POST", API_REPO + r"/commit/(?P<rev>[^/]+)")
    def commit(session: Session, request: Request, body: bytes, rev: str, **p: Any) -> Response:
        repo, identity = hub.writable_repo(session, request, *repo_params(p))
        if request.query_params.get("create_pr") in ("1", "true", "True"):
            raise HubError("pull requests are not supported by this server", status=400)
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
                        "add",
                        value["path"],
                        tree_entry(sha, len(content), lfs=False, content=content),
                    )
                )
            elif key == "lfsFile":
                sha, size = value["oid"], int(value["size"])
                if (
                    not hub.store.exists(sha)
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
        new = repos.apply_commit(
            session,
            repo,
            rev,
            operations,
            title=header.get("summary") or "Upload files",
            message=header.get("description") or "",
            author=identity.user,
            parent_commit=header.get("parentCommit"),
        )
        return JSONResponse(
            {
                "commitUrl": f"{hub.repo_url(repo)}/commit/{new.oid}",
                "commitOid": new.oid,
                "pullRequestUrl": None,
                "success": True,
            }
        )

    _ = TYPE_FROM_PLURAL
