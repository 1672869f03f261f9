"""What a download answers besides the bytes: the headers the client needs, byte ranges.

Plain HTTP only (no Xet hash is ever advertised, so clients never try a Xet download):
``X-Repo-Commit``, a quoted ``ETag`` (sha256 for LFS files, git blob sha1 otherwise),
``X-Linked-Size``/``X-Linked-Etag``, and byte ranges (206) for resumed downloads.
"""

from __future__ import annotations

import re
from typing import Any

from tether.errors import HubError

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


def download_headers(commit_oid: str, path: str, entry: dict[str, Any]) -> dict[str, str]:
    """Headers for the file ``entry`` (a tree entry) at ``path`` of commit ``commit_oid``."""
    etag = f'"{entry["sha256"] if entry["lfs"] else entry["oid"]}"'
    return {
        "X-Repo-Commit": commit_oid,
        "ETag": etag,
        "X-Linked-Etag": etag,
        "X-Linked-Size": str(entry["size"]),
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'inline; filename="{path.rsplit("/", 1)[-1]}"',
        "Cache-Control": "private, max-age=0",
    }
