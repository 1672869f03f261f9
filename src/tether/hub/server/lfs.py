"""The Git LFS batch API (basic and multipart transfers) for clients that do not use Xet,
and for `git lfs pull` of a cloned repo (downloads). A client offering the ``xet`` transfer
is sent to the CAS instead (xet.py ``upload_action``).

The batch call is authenticated with the client's token; it answers with signed URLs
(see signing.py) because the client PUTs bodies and parts, and git-lfs GETs bodies, without
a token. Bodies land in
a temp file, are hashed, and become a blob only when the sha256 matches the announced oid.
Multipart parts are kept under ``uploads/<oid>/`` until the completion call joins them.
A client that never completes leaves them behind, so uploads untouched for
``STALE_UPLOAD_S`` are swept: at start-up and, at most every ``SWEEP_EVERY_S``, on a batch
call. By then every URL that could add to them has expired (``signing.DEFAULT_TTL_S``).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from starlette.requests import Request

from tether.errors import HubError, HubIntegrityError
from tether.hub.server import signing
from tether.hub.server.schemas import LfsAction, LfsPart
from tether.hub.server.state import HubState
from tether.hub.server.storage import verify_and_store

#: Files above this size are offered a multipart transfer, in parts of this size.
MULTIPART_CHUNK = 8 * 1024 * 1024
#: An upload (part folder or temp body) untouched this long is abandoned: six times the
#: life of the signed URLs that could still write to it.
STALE_UPLOAD_S = 6 * signing.DEFAULT_TTL_S
SWEEP_EVERY_S = 600
OID_RE = re.compile(r"^[0-9a-f]{64}$")


def actions(
    hub: HubState, repo_pk: int, oid: str, size: int, multipart: bool
) -> dict[str, LfsAction]:
    """Signed upload (one PUT, or a PUT per part and a completion) and verify URLs."""
    base = hub.base_url
    root = f"/_lfs/{repo_pk}/{oid}/{size}"
    verify = LfsAction(href=signing.signed_url(base, hub.secret, "POST", f"{root}/verify"))
    if multipart and size > MULTIPART_CHUNK:
        parts = math.ceil(size / MULTIPART_CHUNK)
        header: dict[str, str] = {"chunk_size": str(MULTIPART_CHUNK)}
        for n in range(1, parts + 1):
            header[str(n)] = signing.signed_url(base, hub.secret, "PUT", f"{root}/part/{n}")
        complete = signing.signed_url(base, hub.secret, "POST", f"{root}/complete")
        return {"upload": LfsAction(href=complete, header=header), "verify": verify}
    href = signing.signed_url(base, hub.secret, "PUT", root)
    return {"upload": LfsAction(href=href), "verify": verify}


def download_action(hub: HubState, repo_pk: int, oid: str, size: int) -> dict[str, LfsAction]:
    """A signed GET of the object's bytes (routers/lfs.py ``get_object``)."""
    path = f"/_lfs/{repo_pk}/{oid}/{size}"
    return {"download": LfsAction(href=signing.signed_url(hub.base_url, hub.secret, "GET", path))}


def check_signed(hub: HubState, request: Request) -> None:
    """The request's method and path are signed by this server and not expired; the
    client sends these requests without its token (the URLs are meant for S3)."""
    signing.check(
        hub.secret,
        request.method,
        request.scope["path"],
        request.query_params.get("expires"),
        request.query_params.get("sig"),
    )


async def receive(hub: HubState, request: Request) -> tuple[Path, str, int]:
    """Stream a request body into a temp file, hashing it (sha256) on the way."""
    directory = hub.config.upload_dir
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, suffix=".part")
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "wb") as out:
        async for block in request.stream():
            digest.update(block)
            size += len(block)
            out.write(block)
    return Path(name), digest.hexdigest(), size


def join_parts(hub: HubState, folder: Path, oid: str, size: int, parts: list[LfsPart]) -> None:
    """Concatenate uploaded parts in order, check each part's ETag and the whole sha256."""
    expected = math.ceil(size / MULTIPART_CHUNK) if size else 0
    if len(parts) != expected:
        raise HubError(f"completion lists {len(parts)} parts, expected {expected}", status=400)
    joined = folder.with_suffix(".joined")
    with joined.open("wb") as out:
        for number, part in enumerate(sorted(parts, key=lambda x: x.part_number), 1):
            path = folder / f"part-{number:05d}"
            if not path.exists():
                raise HubIntegrityError(f"part {number} of {oid} was never uploaded")
            digest = hashlib.sha256()
            with path.open("rb") as src:
                while block := src.read(1024 * 1024):
                    digest.update(block)
                    out.write(block)
            if part.etag.strip('"') != digest.hexdigest():
                raise HubIntegrityError(f"part {number} of {oid} does not match its ETag")
    verify_and_store(hub.store, joined, oid)
    shutil.rmtree(folder, ignore_errors=True)


def remove_stale(directory: Path, max_age_s: float, now: float | None = None) -> list[Path]:
    """Remove entries of ``directory`` whose newest file is older than ``max_age_s``
    seconds; returns what was removed."""
    now = time.time() if now is None else now
    removed = []
    for entry in directory.iterdir() if directory.is_dir() else []:
        try:
            files = [entry, *entry.rglob("*")] if entry.is_dir() else [entry]
            newest = max(f.stat().st_mtime for f in files)
        except FileNotFoundError:  # joined or moved into place meanwhile
            continue
        if now - newest > max_age_s:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def sweep_uploads(hub: HubState, *, force: bool = True) -> list[Path]:
    """Remove abandoned uploads now (``force``), or only if the last sweep was more than
    ``SWEEP_EVERY_S`` ago (what each batch call asks)."""
    if not force and time.monotonic() - hub.swept_at < SWEEP_EVERY_S:
        return []
    hub.swept_at = time.monotonic()
    return remove_stale(hub.config.upload_dir, STALE_UPLOAD_S)
