"""Datasets for the explore tests: tiny labelled JSONL with bad records, and a labelled
slice of Debian's fortunes (file name = label) for MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FORTUNES = Path("/usr/share/games/fortunes")
CATEGORIES = ("startrek", "linux", "food", "medicine")


def fortunes_jsonl(path: Path, per_category: int = 40) -> list[dict[str, str]]:
    """The first ``per_category`` fortunes of each category as JSONL rows (id, text, label)."""
    if not FORTUNES.is_dir():
        pytest.skip("Debian fortunes not installed (apt-get install fortunes)")
    rows = []
    for name in CATEGORIES:
        raw = (FORTUNES / name).read_text(encoding="utf-8", errors="replace")
        entries = [e.strip() for e in raw.split("\n%\n") if e.strip().strip("%").strip()]
        rows += [
            {"id": f"{name}-{i}", "text": text, "label": name}
            for i, text in enumerate(entries[:per_category])
        ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


GROUPS = {
    "animals": ["the quick brown fox", "the lazy dog", "a fox and a dog", "the dog jumps"],
    "places": ["paris is the capital", "berlin is the capital of germany", "france and germany"],
    "numbers": ["numbers like 42", "3.14 and 42", "numbers of numbers", "42 42 42"],
}


def write_jsonl(path: Path, bad: bool = True) -> list[dict]:
    rows = [
        {"id": f"{label}-{i}", "text": text, "label": label}
        for label, texts in GROUPS.items()
        for i, text in enumerate(texts)
    ]
    lines = [json.dumps(r) for r in rows]
    if bad:
        lines[3:3] = ["{not json", json.dumps({"id": "empty", "text": "", "label": "x"})]
        lines.append(json.dumps({"id": "nolabel", "text": "a dog without a label"}))
    path.write_text("\n".join(lines) + "\n")
    return rows
