"""The two pattern files a repo can hold that change how the server treats a path:
``.gitattributes`` (which files are LFS) and ``.gitignore`` (which files an upload skips).

Both use git's wildmatch rules; this is the subset huggingface_hub users write: a pattern
without ``/`` matches a file's name at any depth (``*.bin``), one with ``/`` matches from
the repo root (``data/*.csv``, a leading ``/`` allowed), a trailing ``/`` matches a
folder and everything in it, ``**`` spans folders, ``!`` re-includes, later lines win.
"""

from __future__ import annotations

import re


def _regex(pattern: str) -> re.Pattern[str]:
    """git's wildmatch as a regex: ``*`` and ``?`` stop at ``/``, ``**/`` spans folders."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out, i = out + "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _matches(pattern: str, path: str) -> bool:
    folder = pattern.endswith("/")
    pattern = pattern.strip("/") if folder else pattern.lstrip("/")
    parts = path.split("/")
    regex = _regex(pattern)
    if "/" not in pattern:
        names = parts[:-1] if folder else parts
        return any(regex.match(name) for name in names)
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + (0 if folder else 1))]
    return any(regex.match(prefix) for prefix in prefixes)


def ignored(gitignore: str, path: str) -> bool:
    """Whether ``path`` is ignored by a ``.gitignore`` with this text."""
    result = False
    for line in gitignore.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if _matches(line[1:] if negate else line, path):
            result = not negate
    return result


def lfs_tracked(gitattributes: str, path: str) -> bool:
    """Whether a ``.gitattributes`` with this text sends ``path`` through LFS
    (``filter=lfs``; a later ``-filter`` or other filter on a matching line undoes it)."""
    result = False
    for line in gitattributes.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        pattern, attrs = fields[0], fields[1:]
        if not _matches(pattern, path):
            continue
        if "filter=lfs" in attrs:
            result = True
        elif "-filter" in attrs or any(a.startswith("filter=") for a in attrs):
            result = False
    return result
