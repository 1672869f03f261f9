"""Repo ids without a namespace (``gpt2``, ``missing_repo_id``): huggingface.co's canonical
repos, which a self-hosted hub never holds. Every route of a repo answers them as a
missing repo (``RepoNotFound``), so ``repo_exists`` / ``file_exists`` say no and the client
raises ``RepositoryNotFoundError`` rather than a bare 404.

Included last (``app.ROUTERS``): ``/api/models/{name}/tree/{rev}`` must never shadow a
two-part id's route such as ``/api/models/{namespace}/{name}/refs``.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request

from tether.hub.server.repos import repo_not_found
from tether.hub.server.routers.files import RAW, RESOLVE

router = APIRouter()
GET = ["GET", "HEAD"]


def no_namespace(request: Request) -> None:
    raise repo_not_found(request.path_params["name"])


for _suffix in (
    "",
    "/revision/{revision:segment}",
    "/tree/{revision:segment}",
    "/tree/{revision:segment}/{path:filepath}",
    "/commits/{revision:segment}",
    "/refs",
):
    router.add_api_route(
        "/api/{repo_type:plural}/{name:segment}" + _suffix, no_namespace, methods=GET
    )
for _kind in (RESOLVE, RAW):
    router.add_api_route(
        "/{repo_type:fileplural}/{name:segment}" + _kind, no_namespace, methods=GET
    )
    router.add_api_route("/{name:segment}" + _kind, no_namespace, methods=GET)
