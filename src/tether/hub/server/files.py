"""File downloads: ``/{repo}/resolve/{revision}/{path}`` with the headers the client needs.

Plain HTTP only (no Xet hash is ever advertised, so clients never try a Xet download):
``X-Repo-Commit``, a quoted ``ETag`` (sha256 for LFS files, git blob sha1 otherwise),
``X-Linked-Size``/``X-Linked-Etag``, and byte ranges (206) for resumed downloads.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tether.errors import HubError
from tether.hub.server import repos
from tether.hub.server.router import FILE_REPO, Router
from tether.hub.server.state import HubState, not_found_entry, repo_params

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive for a single ``bytes=`` range; None means the whole file."""
    if not header:
        return None
    found = RANGE_RE.match(header.strip())
    if not found or (not found.group(1) and not found.group(2)):
        return None
    first, last = found.group(1), found.group(2)
    if first:
        start, end = int(first), int(last) if last else size - 1
    else:
        start, end = max(size - int(last), 0), size - 1
    end = min(end, size - 1)
    if start >= size or start > end:
        raise HubError(f"range {header} is outside the file ({size} bytes)", status=416)
    return start, end


def register(router: Router, hub: HubState) -> None:
    """Add the resolve route to ``router``."""

    async def resolve(request: Request, rev: str, path: str, **p: Any) -> Response:
        def lookup() -> tuple[str, dict[str, Any], str]:
            with hub.session() as session:
                repo, _ = hub.readable_repo(session, request, *repo_params(p))
                commit = repos.resolve_revision(session, repo, rev)
                entry = repos.tree_of(commit).get(path)
                if entry is None:
                    raise not_found_entry(path)
                return commit.oid, entry, repo.repo_id

        commit_oid, entry, _ = await run_in_threadpool(lookup)
        size = entry["size"]
        etag = f'"{entry["sha256"] if entry["lfs"] else entry["oid"]}"'
        headers = {
            "X-Repo-Commit": commit_oid,
            "ETag": etag,
            "X-Linked-Etag": etag,
            "X-Linked-Size": str(size),
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'inline; filename="{path.rsplit("/", 1)[-1]}"',
            "Cache-Control": "private, max-age=0",
        }
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

    router.add("GET", FILE_REPO + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)")(resolve)
