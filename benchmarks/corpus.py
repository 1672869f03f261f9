"""A real corpus for benchmarks: Debian's ``fortunes`` (thousands of human-written texts).

Install with ``apt-get install fortunes``. Each text keeps its file name as a label.
"""

from __future__ import annotations

import random
from pathlib import Path

FORTUNES_DIR = Path("/usr/share/games/fortunes")


def fortunes(limit: int | None = None, seed: int = 0) -> list[tuple[str, str]]:
    """(text, category) pairs, shuffled deterministically; at most ``limit``."""
    if not FORTUNES_DIR.is_dir():
        raise SystemExit(
            f"{FORTUNES_DIR} not found: install the corpus with `apt-get install fortunes`."
        )
    texts: list[tuple[str, str]] = []
    for path in sorted(FORTUNES_DIR.iterdir()):
        if path.suffix or not path.is_file():  # skip .dat indexes and .u8 links
            continue
        raw = path.read_text(encoding="utf-8", errors="replace")
        for entry in raw.split("\n%\n"):
            entry = entry.strip().strip("%").strip()
            if entry:
                texts.append((entry, path.name))
    random.Random(seed).shuffle(texts)
    return texts[:limit] if limit else texts


def long_texts(limit: int | None = None, seed: int = 0) -> list[str]:
    """Longer real texts (about 100 tokens each on average): paragraphs of 40 to 200 words
    from the descriptions of the installed Python packages and from the docstrings of
    Python's standard library, prose only (no code or tables), deduplicated, shuffled."""
    import ast
    import importlib.metadata
    import re
    import sysconfig

    bodies = [
        d.metadata.get_payload() or d.metadata.get("Description") or ""
        for d in importlib.metadata.distributions()
    ]
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)):
                bodies.append(ast.get_docstring(node) or "")
    code = re.compile(r"^\s*(```|>>>|\.\.|\$|<|\||#|    )")
    found: set[str] = set()
    for body in bodies:
        for paragraph in re.split(r"\n\s*\n", body):
            if code.match(paragraph):
                continue
            text = " ".join(paragraph.split())
            if 40 <= len(text.split()) <= 200:
                found.add(text)
    texts = sorted(found)
    random.Random(seed).shuffle(texts)
    return texts[:limit] if limit else texts
