"""Xet uploads: the write-token route and the CAS routes hf_xet talks to.

Since huggingface_hub 1.20 the client uploads LFS-sized files through Xet whenever hf_xet is
installed, without asking the server first. So the server issues a short-lived CAS token
(an HMAC over repo and expiry, no database row), accepts xorbs (verifying each chunk and the
xorb hash against the URL) and shards, and rebuilds every file a shard describes from its
xorbs right away: the bytes are checked against the sha256 the shard announces and stored as
an ordinary content-addressed blob. The later commit then names that sha256 like any LFS
file, and downloads stay plain HTTP (no Xet hash is ever advertised).

Clients that ask first (the JavaScript client ``@huggingface/hub``) offer ``xet`` among the
transfers of an LFS upload batch; the answer then names ``xet`` and gives each object to send
an upload action whose headers carry a CAS token and URL, and whose href is the repo's
write-token route, for refreshing it (``upload_action``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from tether.errors import HubAuthError, HubIntegrityError
from tether.hub.server import xetformat
from tether.hub.server.db import Repo, grant_object
from tether.hub.server.schemas import LfsAction
from tether.hub.server.state import HubState
from tether.hub.server.storage import verify_and_store

TOKEN_TTL_S = 3600


def issue_token(secret: bytes, repo_pk: int, ttl_s: int = TOKEN_TTL_S) -> tuple[str, int]:
    expires = int(time.time()) + ttl_s
    body = f"xet1.{repo_pk}.{expires}"
    sig = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{sig}", expires


def cas_url(hub: HubState) -> str:
    return f"{hub.base_url}/_xet"


def grant(hub: HubState, repo_pk: int) -> tuple[str, int, dict[str, str]]:
    """A fresh CAS token for a repo: (token, expiry, the headers that carry it with the CAS
    URL, as hf_xet and the JavaScript client read them)."""
    token, expires = issue_token(hub.secret, repo_pk)
    headers = {
        "X-Xet-Cas-Url": cas_url(hub),
        "X-Xet-Access-Token": token,
        "X-Xet-Token-Expiration": str(expires),
    }
    return token, expires, headers


def upload_action(hub: HubState, repo: Repo, revision: str) -> LfsAction:
    """The ``xet`` transfer's upload action of an LFS batch answer: a CAS token in the
    headers the client reads, and the write-token route (its Bearer token, not this one)
    as the href to call for a fresh token."""
    _, _, header = grant(hub, repo.id)
    href = f"{hub.base_url}/api/{repo.repo_type}s/{repo.repo_id}/xet-write-token/" + quote(
        revision, safe=""
    )
    return LfsAction(href=href, header=header)


def check_token(secret: bytes, authorization: str | None) -> int:
    """The repo a CAS bearer token was issued for; raises when missing, forged or expired."""
    value = (authorization or "").partition(" ")[2].strip()
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != "xet1" or not parts[1].isdigit() or not parts[2].isdigit():
        raise HubAuthError("missing or malformed Xet CAS token")
    body = ".".join(parts[:3])
    expected = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, parts[3]):
        raise HubAuthError("Xet CAS token signature does not match")
    if int(parts[2]) < time.time():
        raise HubAuthError("Xet CAS token has expired")
    return int(parts[1])


def xorb_dir(hub: HubState) -> Path:
    return hub.config.data_dir / "xet" / "xorbs"


def store_xorb(hub: HubState, expected_hash: str, body: bytes) -> bool:
    """Verify a xorb (chunks decode, hash matches the URL) and keep it; False if known."""
    target = xorb_dir(hub) / expected_hash
    if target.exists():
        return False
    chunks = xetformat.decode_xorb(body)
    actual = xetformat.xorb_hash_of(chunks)
    if actual != expected_hash:
        raise HubIntegrityError(f"xorb hashes to {actual}, uploaded as {expected_hash}")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, suffix=".part")
    with os.fdopen(fd, "wb") as out:
        out.write(body)
    os.replace(name, target)
    return True


def rebuild_files(hub: HubState, shard: bytes, repo_pk: int) -> list[str]:
    """Rebuild each file a shard lists from stored xorbs; store it under its sha256."""
    stored = []
    for info in xetformat.parse_shard_files(shard):
        hub.config.upload_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=hub.config.upload_dir, suffix=".xet")
        digest = hashlib.sha256()
        cached: tuple[str, list[bytes]] | None = None
        with os.fdopen(fd, "wb") as out:
            for seg in info.segments:
                if cached is None or cached[0] != seg.xorb_hash:
                    path = xorb_dir(hub) / seg.xorb_hash
                    if not path.exists():
                        Path(name).unlink(missing_ok=True)
                        raise HubIntegrityError(
                            f"shard refers to xorb {seg.xorb_hash}, which was never uploaded"
                        )
                    cached = (seg.xorb_hash, xetformat.decode_xorb(path.read_bytes()))
                chunks = cached[1][seg.chunk_start : seg.chunk_end]
                data = b"".join(chunks)
                if (
                    len(chunks) != seg.chunk_end - seg.chunk_start
                    or len(data) != seg.unpacked_bytes
                ):
                    Path(name).unlink(missing_ok=True)
                    raise HubIntegrityError(f"segment of {seg.xorb_hash} does not match the xorb")
                digest.update(data)
                out.write(data)
        sha = digest.hexdigest()
        if info.sha256 is not None and info.sha256 != sha:
            Path(name).unlink(missing_ok=True)
            raise HubIntegrityError(
                f"file rebuilt from xorbs has sha256 {sha}, the shard says {info.sha256}"
            )
        if hub.store.exists(sha):
            Path(name).unlink(missing_ok=True)
        else:
            verify_and_store(hub.store, Path(name), sha)
        grant_object(hub.sessions, repo_pk, sha)
        stored.append(sha)
    return stored
