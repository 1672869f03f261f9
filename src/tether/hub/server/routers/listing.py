"""Finding repos: ``GET /api/models``, ``/api/datasets``, ``/api/spaces`` (``list_models``
and friends, ``hf models ls``) and ``GET /api/settings/repositories`` (``hf repos ls``).

Parameters are read as huggingface_hub sends them: ``author``, ``search`` (repeated for
datasets), ``filter`` (tags), ``sort``, ``direction``, ``limit`` (the page size), ``full``
and ``expand`` (repeated). The next page is named by a ``Link: <url>; rel="next"`` header
carrying a ``cursor``, which the client follows until there is none (see listing.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse

from tether.errors import HubAuthError
from tether.hub.server import listing, repos
from tether.hub.server.db import Commit
from tether.hub.server.deps import DB, Caller, Hub
from tether.hub.server.routers.repos import GET

router = APIRouter()

#: What a listing answers without ``expand``: what ``model_info`` answers, less the files.
DEFAULT_FIELDS = frozenset(
    {
        "author",
        "sha",
        "lastModified",
        "createdAt",
        "private",
        "gated",
        "disabled",
        "downloads",
        "likes",
        "trendingScore",
        "tags",
    }
)
#: Every property huggingface_hub may ask for by ``expand``; those this server does not
#: know (``cardData``, ``safetensors``, ``runtime``...) are left out of the answer, as
#: huggingface.co leaves out what a repo lacks; any other name is refused (400).
EXPANDABLE = DEFAULT_FIELDS | {
    "siblings",
    "usedStorage",
    "downloadsAllTime",
    "baseModels",
    "cardData",
    "childrenModelCount",
    "citation",
    "config",
    "datasets",
    "description",
    "evalResults",
    "gguf",
    "inference",
    "inferenceProviderMapping",
    "library_name",
    "mainSize",
    "mask_token",
    "model-index",
    "models",
    "paperswithcode_id",
    "pipeline_tag",
    "region",
    "resourceGroup",
    "runtime",
    "safetensors",
    "sdk",
    "spaces",
    "subdomain",
    "transformersInfo",
    "widgetData",
}
NEEDS_TREE = frozenset({"siblings", "usedStorage"})


class BadExpandError(listing.BadListingError):
    """``expand`` named a property no client asks for; ``names`` are the unknown ones."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"unknown expand properties: {', '.join(names)}", parameter="expand")
        self.names = names


def _fields(request: Request) -> frozenset[str]:
    expand = [v for key in ("expand", "expand[]") for v in request.query_params.getlist(key)]
    if expand:
        unknown = sorted(set(expand) - EXPANDABLE)
        if unknown:
            raise BadExpandError(unknown)
        return frozenset(expand)
    if request.query_params.get("full") in ("1", "true", "True"):
        return DEFAULT_FIELDS | NEEDS_TREE
    return DEFAULT_FIELDS


def _trees(session: DB, page: list[listing.Listed]) -> dict[int, dict[str, Any]]:
    """The head trees of a page's repos, in one query."""
    oids = {item.head_oid for item in page}
    rows = list(session.scalars(select(Commit).where(Commit.oid.in_(oids)))) if oids else []
    by_key = {(c.repo_pk, c.oid): c for c in rows}
    return {
        item.repo.id: repos.tree_of(by_key[(item.repo.id, item.head_oid)])
        for item in page
        if (item.repo.id, item.head_oid) in by_key
    }


def list_repos(hub: Hub, session: DB, caller: Caller, request: Request) -> JSONResponse:
    """One page of repos of the path's type that the caller may read."""
    params = request.query_params
    repo_type = request.url.path.rstrip("/").rsplit("/", 1)[-1][:-1]  # models -> model
    query = listing.Query.parse(
        repo_type,
        author=params.get("author"),
        search=params.getlist("search"),
        tags=params.getlist("filter"),
        sort=params.get("sort"),
        direction=params.get("direction"),
        limit=params.get("limit"),
        cursor=params.get("cursor"),
    )
    fields = _fields(request)
    page = listing.list_page(session, caller, query)
    trees = _trees(session, page.items) if fields & NEEDS_TREE else {}
    body = [listing.describe(item, fields, trees.get(item.repo.id)) for item in page.items]
    headers = {}
    if page.next_cursor is not None:
        rest = [(k, v) for k, v in params.multi_items() if k != "cursor"]
        url = f"{hub.base_url}{request.url.path}?{urlencode([*rest, ('cursor', page.next_cursor)])}"
        headers["Link"] = f'<{url}>; rel="next"'
    return JSONResponse(body, headers=headers)


for _plural in ("models", "datasets", "spaces"):
    router.add_api_route(f"/api/{_plural}", list_repos, methods=GET, name=f"list_{_plural}")


@router.api_route("/api/settings/repositories", methods=GET)
def my_repos(session: DB, caller: Caller) -> list[dict[str, Any]]:
    """``list_user_repos`` (``hf repos ls``): the caller's repos of every type, newest
    first, with the bytes their main branch holds as ``storage``."""
    if caller is None:
        raise HubAuthError("listing your repos needs a token")
    items = listing.visible(session, caller, None, author=caller.user)
    items.sort(key=lambda item: item.last_modified, reverse=True)
    trees = _trees(session, items)
    sizes = {pk: sum(e["size"] for e in tree.values()) for pk, tree in trees.items()}
    total = sum(sizes.values()) or 1
    return [
        {
            "id": item.repo.repo_id,
            "type": item.repo.repo_type,
            "updatedAt": listing.as_json_date(item.last_modified),
            "visibility": "private" if item.repo.private else "public",
            "storage": sizes.get(item.repo.id, 0),
            "storagePercent": 100.0 * sizes.get(item.repo.id, 0) / total,
        }
        for item in items
    ]
