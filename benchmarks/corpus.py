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
