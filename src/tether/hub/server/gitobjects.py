"""Git-compatible ids, so ETags and tree ``oid`` values mean what the client expects.

Regular files are identified by their git blob sha1; LFS files by their sha256, with the git
blob sha1 of their pointer file as tree ``oid``. Commit ids are sha1s over the commit's
content, so the same 40-hex form the client validates.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GITATTRIBUTES = """*.7z filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.gguf filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.tar.gz filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
"""

#: Suffixes stored as LFS whatever their size (as the .gitattributes above says).
LFS_SUFFIXES = tuple(
    line.split()[0].lstrip("*") for line in GITATTRIBUTES.splitlines() if line.strip()
)
#: Files at least this large go through LFS (or Xet), as on huggingface.co.
LFS_THRESHOLD = 10 * 1024 * 1024


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"
    ).encode()


def is_lfs_path(path: str, size: int, sample: bytes = b"") -> bool:
    """Whether a file goes through LFS: by suffix, by size, or binary content."""
    return path.endswith(LFS_SUFFIXES) or size >= LFS_THRESHOLD or b"\0" in sample


def tree_entry(sha256: str, size: int, *, lfs: bool, content: bytes | None = None) -> dict:
    """One file of a commit's tree; ``content`` is needed for regular files' git sha1."""
    if lfs:
        pointer = lfs_pointer(sha256, size)
        return {
            "sha256": sha256,
            "size": size,
            "lfs": True,
            "oid": git_blob_sha1(pointer),
            "pointer_size": len(pointer),
        }
    assert content is not None
    return {"sha256": sha256, "size": size, "lfs": False, "oid": git_blob_sha1(content)}


def commit_oid(parent: str | None, tree: dict[str, Any], title: str, author: str, when: str) -> str:
    payload = json.dumps([parent, tree, title, author, when], sort_keys=True).encode()
    return hashlib.sha1(b"commit %d\0" % len(payload) + payload).hexdigest()
