"""Branches and tags: list them, create and delete them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from starlette.requests import Request

from tether.hub.server import repos
from tether.hub.server.deps import DB, ReadableRepo, WritableRepo, json_body
from tether.hub.server.routers.repos import API_REPO, GET
from tether.hub.server.schemas import BranchRequest, GitRef, GitRefs, TagRequest

router = APIRouter()


@router.api_route(API_REPO + "/refs", methods=GET, response_model=GitRefs)
def refs(session: DB, request: Request, repo: ReadableRepo) -> GitRefs:
    """``list_repo_refs``; ``pullRequests`` (``refs/pr/N``) only with ``include_prs``."""
    out = GitRefs()
    prs: list[GitRef] = []
    lists = {"branch": out.branches, "tag": out.tags, "pr": prs}
    prefixes = {"branch": "refs/heads/", "tag": "refs/tags/", "pr": "refs/pr/"}
    for ref in repos.list_refs(session, repo):
        full = prefixes[ref.kind] + ref.name
        lists[ref.kind].append(GitRef(name=ref.name, ref=full, target_commit=ref.commit_oid))
    if request.query_params.get("include_prs"):
        out.pull_requests = prs
    return out


@router.post(API_REPO + "/branch/{branch:segment}")
def create_branch(
    session: DB,
    repo: WritableRepo,
    branch: str,
    payload: Annotated[BranchRequest, json_body(BranchRequest)],
) -> dict[str, Any]:
    repos.create_ref(session, repo, "branch", branch, payload.starting_point)
    return {}


@router.delete(API_REPO + "/branch/{branch:segment}")
def delete_branch(session: DB, repo: WritableRepo, branch: str) -> dict[str, Any]:
    repos.delete_ref(session, repo, "branch", branch)
    return {}


@router.post(API_REPO + "/tag/{revision:segment}")
def create_tag(
    session: DB,
    repo: WritableRepo,
    revision: str,
    payload: Annotated[TagRequest, json_body(TagRequest)],
) -> dict[str, Any]:
    """Tag ``revision`` (a branch, tag or commit) as ``payload.tag``."""
    repos.create_ref(session, repo, "tag", payload.tag, revision, message=payload.message)
    return {}


@router.delete(API_REPO + "/tag/{tag:segment}")
def delete_tag(session: DB, repo: WritableRepo, tag: str) -> dict[str, Any]:
    repos.delete_ref(session, repo, "tag", tag)
    return {}
