"""The Git LFS batch API (basic and multipart transfers) for clients that do not use Xet.

The batch call is authenticated with the client's token; it answers with signed URLs
(see signing.py) because the client PUTs bodies and parts without a token. Bodies land in
a temp file, are hashed, and become a blob only when the sha256 matches the announced oid.
Multipart parts are kept under ``uploads/<oid>/`` until the completion call joins them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tether.errors import HubError, HubIntegrityError
from tether.hub.server import signing
from tether.hub.server.db import grant_object, has_object
from tether.hub.server.router import FILE_REPO, Router
from tether.hub.server.state import HubState, repo_params
from tether.hub.server.storage import receive_to_temp, verify_and_store

#: Files above this size are offered a multipart transfer, in parts of this size.
MULTIPART_CHUNK = 8 * 1024 * 1024
OID_RE = re.compile(r"^[0-9a-f]{64}$")


def _check_signed(hub: HubState, request: Request, path: str) -> None:
    signing.check(
        hub.secret,
        request.method,
        path,
        request.query_params.get("expires"),
        request.query_params.get("sig"),
    )


def _actions(hub: HubState, repo_pk: int, oid: str, size: int, multipart: bool) -> dict[str, Any]:
    base = hub.base_url
    root = f"/_lfs/{repo_pk}/{oid}/{size}"
    verify = {
        "href": signing.signed_url(base, hub.secret, "POST", f"{root}/verify"),
        "header": {},
    }
    if multipart and size > MULTIPART_CHUNK:
        parts = math.ceil(size / MULTIPART_CHUNK)
        header: dict[str, str] = {"chunk_size": str(MULTIPART_CHUNK)}
        for n in range(1, parts + 1):
            header[str(n)] = signing.signed_url(base, hub.secret, "PUT", f"{root}/part/{n}")
        complete = signing.signed_url(base, hub.secret, "POST", f"{root}/complete")
        return {"upload": {"href": complete, "header": header}, "verify": verify}
    href = signing.signed_url(base, hub.secret, "PUT", root)
    return {"upload": {"href": href, "header": {}}, "verify": verify}


def register(router: Router, hub: HubState) -> None:
    """Add the LFS batch and upload routes to ``router``."""

    async def batch(request: Request, **p: Any) -> Response:
        payload = json.loads(await request.body() or b"{}")

        def run() -> Response:
            with hub.session() as session:
                if payload.get("operation") == "download":
                    repo, _ = hub.readable_repo(session, request, *repo_params(p))
                else:
                    repo, _ = hub.writable_repo(session, request, *repo_params(p))
                known = {
                    str(o.get("oid"))
                    for o in payload.get("objects", [])
                    if has_object(session, repo.id, str(o.get("oid")))
                }
            transfers = payload.get("transfers") or ["basic"]
            multipart = "multipart" in transfers
            objects = []
            for obj in payload.get("objects", []):
                oid, size = str(obj.get("oid", "")), int(obj.get("size", -1))
                if not OID_RE.match(oid) or size < 0:
                    objects.append(
                        {
                            "oid": oid,
                            "size": size,
                            "error": {"code": 422, "message": "invalid oid or size"},
                        }
                    )
                elif oid in known and hub.store.exists(oid) and hub.store.size(oid) == size:
                    # Already uploaded to this repo: no actions. Bytes another repo holds must
                    # be sent again, so knowing a hash never grants its content.
                    objects.append({"oid": oid, "size": size})
                else:
                    objects.append(
                        {
                            "oid": oid,
                            "size": size,
                            "authenticated": True,
                            "actions": _actions(hub, repo.id, oid, size, multipart),
                        }
                    )
            used = "multipart" if multipart else "basic"
            return JSONResponse(
                {"transfer": used, "objects": objects, "hash_algo": "sha256"},
                media_type="application/vnd.git-lfs+json",
            )

        return await run_in_threadpool(run)

    router.add("POST", FILE_REPO + r"\.git/info/lfs/objects/batch")(batch)

    prefix = r"/_lfs/(?P<repo>\d+)/(?P<oid>[0-9a-f]{64})/(?P<size>\d+)"

    async def put_object(request: Request, repo: str, oid: str, size: str) -> Response:
        _check_signed(hub, request, f"/_lfs/{repo}/{oid}/{size}")
        tmp, _sha, got = await _receive(hub, request)
        if got != int(size):
            tmp.unlink(missing_ok=True)
            raise HubIntegrityError(f"received {got} bytes, announced {size}")
        await run_in_threadpool(verify_and_store, hub.store, tmp, oid)
        await run_in_threadpool(grant_object, hub.sessions, int(repo), oid)
        return Response(status_code=200)

    router.add("PUT", prefix)(put_object)

    async def put_part(request: Request, repo: str, oid: str, size: str, n: str) -> Response:
        _check_signed(hub, request, f"/_lfs/{repo}/{oid}/{size}/part/{n}")
        tmp, sha, _ = await _receive(hub, request)
        target = hub.config.upload_dir / f"{repo}-{oid}" / f"part-{int(n):05d}"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(target)
        return Response(status_code=200, headers={"ETag": f'"{sha}"'})

    router.add("PUT", prefix + r"/part/(?P<n>\d+)")(put_part)

    async def complete(request: Request, repo: str, oid: str, size: str) -> Response:
        _check_signed(hub, request, f"/_lfs/{repo}/{oid}/{size}/complete")
        payload = json.loads(await request.body() or b"{}")
        folder = hub.config.upload_dir / f"{repo}-{oid}"
        await run_in_threadpool(_join_parts, hub, folder, oid, int(size), payload.get("parts", []))
        await run_in_threadpool(grant_object, hub.sessions, int(repo), oid)
        return JSONResponse({"oid": oid, "size": int(size)})

    router.add("POST", prefix + r"/complete")(complete)

    async def verify(request: Request, repo: str, oid: str, size: str) -> Response:
        _check_signed(hub, request, f"/_lfs/{repo}/{oid}/{size}/verify")
        if not hub.store.exists(oid) or hub.store.size(oid) != int(size):
            raise HubIntegrityError(f"LFS object {oid} ({size} bytes) is not stored")
        return JSONResponse({"oid": oid, "size": int(size)})

    router.add("POST", prefix + r"/verify")(verify)


async def _receive(hub: HubState, request: Request) -> tuple[Path, str, int]:
    """Stream a request body into a temp file, hashing it (sha256) on the way."""
    directory = hub.config.upload_dir
    directory.mkdir(parents=True, exist_ok=True)
    import os
    import tempfile

    fd, name = tempfile.mkstemp(dir=directory, suffix=".part")
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "wb") as out:
        async for block in request.stream():
            digest.update(block)
            size += len(block)
            out.write(block)
    return Path(name), digest.hexdigest(), size


def _join_parts(
    hub: HubState, folder: Path, oid: str, size: int, parts: list[dict[str, Any]]
) -> None:
    """Concatenate uploaded parts in order, check each part's ETag and the whole sha256."""
    expected = math.ceil(size / MULTIPART_CHUNK) if size else 0
    if len(parts) != expected:
        raise HubError(f"completion lists {len(parts)} parts, expected {expected}", status=400)
    joined = folder.with_suffix(".joined")
    with joined.open("wb") as out:
        for number, part in enumerate(sorted(parts, key=lambda x: int(x["partNumber"])), 1):
            path = folder / f"part-{number:05d}"
            if not path.exists():
                raise HubIntegrityError(f"part {number} of {oid} was never uploaded")
            digest = hashlib.sha256()
            with path.open("rb") as src:
                while block := src.read(1024 * 1024):
                    digest.update(block)
                    out.write(block)
            if str(part.get("etag", "")).strip('"') != digest.hexdigest():
                raise HubIntegrityError(f"part {number} of {oid} does not match its ETag")
    verify_and_store(hub.store, joined, oid)
    shutil.rmtree(folder, ignore_errors=True)
    _ = receive_to_temp
