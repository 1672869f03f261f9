"""Git ids, so ETags, tree ``oid`` values and commit ids mean what git and the client expect.

Regular files are identified by their git blob sha1; LFS files by their sha256, with the git
blob sha1 of their pointer file as tree ``oid``. A commit id is the sha1 of a real git
commit object (``git_commit``): its tree is built from the stored file tree (``git_trees``),
so `git clone` of a hub repo (gitrepo.py) sees the very ids the API reports. A commit that
arrived by `git push` keeps the client's object byte for byte (``Commit.git_raw``), so its
id is the client's; ``pushed_header`` reads what the hub checks and keeps of it.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from datetime import UTC, datetime
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


def git_object_id(kind: str, raw: bytes) -> str:
    """The sha1 git names an object by: over ``<kind> <size>\\0`` and its content."""
    return hashlib.sha1(f"{kind} {len(raw)}".encode() + b"\0" + raw).hexdigest()


def git_trees(tree: dict[str, Any]) -> tuple[str, dict[str, bytes]]:
    """The root tree id of a stored file tree, and every tree object (id -> raw content).

    Files are mode 100644 (the hub keeps no executable bit) and name their blob by the
    entry's ``oid``; folders are the tree objects git would build, entries in git's order
    (a folder sorts as if its name ended in ``/``).
    """
    root: dict[str, Any] = {}
    for path, entry in tree.items():
        *folders, leaf = path.split("/")
        node = root
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = entry["oid"]
    objects: dict[str, bytes] = {}

    def build(node: dict[str, Any]) -> str:
        rows = []
        for name, value in node.items():
            if isinstance(value, dict):
                rows.append((name + "/", b"40000 " + name.encode(), build(value)))
            else:
                rows.append((name, b"100644 " + name.encode(), value))
        raw = b"".join(head + b"\0" + bytes.fromhex(oid) for _key, head, oid in sorted(rows))
        oid = git_object_id("tree", raw)
        objects[oid] = raw
        return oid

    return build(root), objects


def git_commit(
    tree_id: str, parent: str | None, title: str, message: str, author: str, when: datetime
) -> bytes:
    """The raw git commit object of a hub commit (author and committer are the user)."""
    seconds = calendar.timegm(when.utctimetuple())  # a naive ``when`` is UTC (SQLite)
    person = f"{author} <{author}@users.noreply.tether-hub> {seconds} +0000"
    lines = [f"tree {tree_id}"] + ([f"parent {parent}"] if parent else [])
    lines += [f"author {person}", f"committer {person}", ""]
    text = title if not message else f"{title}\n\n{message}"
    return ("\n".join(lines) + "\n" + text.rstrip("\n") + "\n").encode()


def commit_oid(
    parent: str | None, tree: dict[str, Any], title: str, author: str, when: str, message: str = ""
) -> str:
    """The id of the git commit ``git_commit`` builds for these fields."""
    moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    raw = git_commit(git_trees(tree)[0], parent, title, message, author, moment)
    return git_object_id("commit", raw)


_COMMITTER = re.compile(rb"^committer .* (\d+) [+-]\d{4}$", re.M)


def pushed_header(raw: bytes) -> tuple[str, list[str], str]:
    """Tree id, parent ids and committer time (ISO 8601, UTC) of a raw git commit object."""
    head = raw.split(b"\n\n", 1)[0]
    lines = head.split(b"\n")
    tree = lines[0].removeprefix(b"tree ").decode() if lines[0].startswith(b"tree ") else ""
    parents = [ln[len(b"parent ") :].decode() for ln in lines if ln.startswith(b"parent ")]
    found = _COMMITTER.search(head)
    seconds = int(found.group(1)) if found else 0
    when = datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
    return tree, parents, when
