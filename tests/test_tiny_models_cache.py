"""``--tiny-models-dir``: the tiny models are built once into a directory and reused,
and built again when ``tests/tiny_models.py`` has changed since."""

from __future__ import annotations

from pathlib import Path

import tiny_models
from conftest import kept_tiny_models


def test_tiny_models_are_built_once_then_reused_until_their_builder_changes(tmp_path):
    builds: list[Path] = []
    root = tmp_path / "kept"

    def build(where: Path) -> None:
        builds.append(where)
        where.mkdir(parents=True, exist_ok=True)

    first = kept_tiny_models(root, build)
    assert builds == [root.resolve()]
    assert first == {name: root.resolve() / name for name in tiny_models.BUILDERS}
    marker = (root / ".complete").read_text(encoding="utf-8")
    assert "sha256:" in marker

    assert kept_tiny_models(root, build) == first
    assert len(builds) == 1  # reused, not rebuilt

    (root / ".complete").write_text(marker.replace("sha256:", "sha256:0"), encoding="utf-8")
    kept_tiny_models(root, build)  # models from another version of tiny_models.py
    assert len(builds) == 2
    assert (root / ".complete").read_text(encoding="utf-8") == marker

    (root / ".complete").unlink()  # an interrupted build left no marker
    kept_tiny_models(root, build)
    assert len(builds) == 3
