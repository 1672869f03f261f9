"""File downloads: ``/{repo}/resolve/{revision}/{path}`` (see files.py for the headers),
and ``/{repo}/raw/{revision}/{path}``, which huggingface.co serves for links to a file's
text and answers here the same way (the bytes as stored)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tether.hub.server import repos
from tether.hub.server.deps import DB, Hub, ReadableRepo
from tether.hub.server.files import download_headers, parse_range

router = APIRouter()
RESOLVE = "/resolve/{revision:segment}/{path:filepath}"
RAW = "/raw/{revision:segment}/{path:filepath}"


def resolve(
    hub: Hub, session: DB, request: Request, repo: ReadableRepo, revision: str, path: str
) -> Response:
    """The file's bytes (or a byte range, 206); HEAD answers the headers alone.

    The session closes when this returns (see deps.DB), before the bytes stream.
    """
    commit = repos.resolve_revision(session, repo, revision)
    entry = repos.tree_of(commit).get(path)
    if entry is None:
        raise repos.not_found_entry(path)
    size = entry["size"]
    headers = download_headers(commit.oid, path, entry)
    span = parse_range(request.headers.get("range"), size)
    status = 200
    start, end = 0, size - 1
    if span is not None:
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    body = hub.store.open_range(entry["sha256"], start, end) if size else iter([b""])
    return StreamingResponse(
        body, status_code=status, headers=headers, media_type="application/octet-stream"
    )


# A dataset's or space's files first: /datasets/ns/name/... would otherwise be read as
# the model "datasets/ns" (it then fails to match, but the order states the intent).
router.add_api_route(
    "/{repo_type:fileplural}/{namespace:segment}/{name:segment}" + RESOLVE,
    resolve,
    methods=["GET", "HEAD"],
    name="resolve_typed",
)
router.add_api_route(
    "/{namespace:segment}/{name:segment}" + RESOLVE, resolve, methods=["GET", "HEAD"]
)
for _kind in (RAW,):
    router.add_api_route(
        "/{repo_type:fileplural}/{namespace:segment}/{name:segment}" + _kind,
        resolve,
        methods=["GET", "HEAD"],
        name="raw_typed",
    )
    router.add_api_route(
        "/{namespace:segment}/{name:segment}" + _kind, resolve, methods=["GET", "HEAD"], name="raw"
    )
