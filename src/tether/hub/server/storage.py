"""Content-addressed blob store: every file body is kept once, under its sha256.

Blobs are written to a temporary file, hashed while written, and only then moved into place,
so a crash mid-upload leaves no blob under a name it does not match. Commits reference blobs
by sha256 only; an unreferenced blob is harmless garbage.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from tether.errors import HubIntegrityError

CHUNK = 1024 * 1024


class BlobStore(Protocol):
    """What the server needs from a blob backend."""

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int: ...

    def put_file(self, sha256: str, path: Path) -> None:
        """Adopt an already-verified local file (moved, not copied, where possible)."""

    def open_range(self, sha256: str, start: int, end: int) -> Iterator[bytes]:
        """Yield bytes ``start..end`` (inclusive) of the blob."""


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 hex digest and size of a local file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def receive_to_temp(stream: BinaryIO | Iterator[bytes], directory: Path) -> tuple[Path, str, int]:
    """Write a body to a temp file in ``directory`` and hash it on the way."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, suffix=".part")
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "wb") as out:
        blocks = iter(lambda: stream.read(CHUNK), b"") if hasattr(stream, "read") else stream
        for block in blocks:
            digest.update(block)
            size += len(block)
            out.write(block)
    return Path(name), digest.hexdigest(), size


def verify_and_store(store: BlobStore, path: Path, expected_sha256: str) -> int:
    """Check a temp file against the sha256 it was announced with, then hand it to the store."""
    actual, size = hash_file(path)
    if actual != expected_sha256:
        path.unlink(missing_ok=True)
        raise HubIntegrityError(
            f"uploaded content has sha256 {actual}, not the announced {expected_sha256}"
        )
    store.put_file(expected_sha256, path)
    return size


class LocalBlobStore:
    """Blobs as files under ``root/ab/cd/<sha256>`` on local disk (the default)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        return self.path(sha256).stat().st_size

    def put_file(self, sha256: str, path: Path) -> None:
        target = self.path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)  # atomic on one filesystem
        except OSError:
            tmp = target.with_suffix(".tmp")
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
            path.unlink(missing_ok=True)

    def open_range(self, sha256: str, start: int, end: int) -> Iterator[bytes]:
        with self.path(sha256).open("rb") as handle:
            handle.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                block = handle.read(min(CHUNK, remaining))
                if not block:
                    break
                remaining -= len(block)
                yield block


class S3BlobStore:
    """Blobs as objects ``<prefix><sha256>`` in an S3-compatible bucket (boto3)."""

    def __init__(self, bucket: str, *, endpoint_url: str | None = None, prefix: str = "") -> None:
        from tether.errors import require_extra

        boto3 = require_extra("boto3", "hub")
        self.bucket = bucket
        self.prefix = prefix
        self.client = boto3.client("s3", endpoint_url=endpoint_url)  # type: ignore[attr-defined]

    def _key(self, sha256: str) -> str:
        return f"{self.prefix}{sha256}"

    def exists(self, sha256: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(sha256))
        except ClientError:
            return False
        return True

    def size(self, sha256: str) -> int:
        head = self.client.head_object(Bucket=self.bucket, Key=self._key(sha256))
        return int(head["ContentLength"])

    def put_file(self, sha256: str, path: Path) -> None:
        # upload_file switches to multipart for large files; the object appears atomically.
        self.client.upload_file(str(path), self.bucket, self._key(sha256))
        path.unlink(missing_ok=True)

    def open_range(self, sha256: str, start: int, end: int) -> Iterator[bytes]:
        response = self.client.get_object(
            Bucket=self.bucket, Key=self._key(sha256), Range=f"bytes={start}-{end}"
        )
        body = response["Body"]
        while block := body.read(CHUNK):
            yield block
