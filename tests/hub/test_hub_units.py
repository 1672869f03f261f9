"""Pieces checked without a client: Xet formats, signing, the S3 blob store (moto)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from conftest import optional_import

optional_import("fastapi", "hub")

from tether.errors import HubAuthError, HubIntegrityError  # noqa: E402
from tether.hub.server import signing, xetformat  # noqa: E402
from tether.hub.server.storage import LocalBlobStore, S3BlobStore, verify_and_store  # noqa: E402


def test_hash_hex_form_reverses_each_u64() -> None:
    raw = bytes(range(32))
    assert xetformat.hash_to_hex(raw).startswith("0706050403020100")
    assert xetformat.hex_to_hash(xetformat.hash_to_hex(raw)) == raw


def test_decode_xorb_all_schemes() -> None:
    import lz4.frame

    data = os.urandom(1000)
    split = b"".join(data[i::4] for i in range(4))

    def chunk(scheme: int, body: bytes, size: int) -> bytes:
        header = bytes([0]) + len(body).to_bytes(3, "little") + bytes([scheme])
        return header + size.to_bytes(3, "little") + body

    xorb = (
        chunk(0, data, 1000)
        + chunk(1, lz4.frame.compress(data), 1000)
        + chunk(2, lz4.frame.compress(split), 1000)
        + b"XETBLOB footer"
    )
    assert xetformat.decode_xorb(xorb) == [data, data, data]
    with pytest.raises(HubIntegrityError):
        xetformat.decode_xorb(chunk(7, data, 1000))


def test_signed_urls_refuse_tampering() -> None:
    secret = b"k" * 32
    url = signing.signed_url("http://h", secret, "PUT", "/_lfs/abc/1")
    query = dict(p.split("=") for p in url.split("?")[1].split("&"))
    signing.check(secret, "PUT", "/_lfs/abc/1", query["expires"], query["sig"])
    with pytest.raises(HubAuthError):
        signing.check(secret, "PUT", "/_lfs/abd/1", query["expires"], query["sig"])
    with pytest.raises(HubAuthError):
        signing.check(secret, "PUT", "/_lfs/abc/1", "1", query["sig"])


def _exercise(store: object, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    sha = hashlib.sha256(data).hexdigest()
    src = tmp_path / "blob"
    src.write_bytes(data)
    bad = tmp_path / "bad"
    bad.write_bytes(b"other")
    with pytest.raises(HubIntegrityError):
        verify_and_store(store, bad, sha)  # type: ignore[arg-type]
    assert not store.exists(sha)  # type: ignore[attr-defined]
    verify_and_store(store, src, sha)  # type: ignore[arg-type]
    assert store.exists(sha) and store.size(sha) == len(data)  # type: ignore[attr-defined]
    assert b"".join(store.open_range(sha, 10, 99)) == data[10:100]  # type: ignore[attr-defined]


def test_local_store(tmp_path: Path) -> None:
    _exercise(LocalBlobStore(tmp_path / "blobs"), tmp_path)


def test_s3_store_with_moto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moto: Any = optional_import("moto", "dev")
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        boto3.client("s3").create_bucket(Bucket="hub")
        _exercise(S3BlobStore("hub", prefix="blobs/"), tmp_path)
