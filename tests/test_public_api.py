"""The public face: ``__all__`` is what the README documents, and importing it is light."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tether

README = Path(__file__).resolve().parents[1] / "README.md"


def _documented_names() -> set[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Public API", 1)[1].split("\n## ", 1)[0]
    bullets = "\n".join(line for line in section.splitlines() if line.startswith(("-", "  ")))
    return set(re.findall(r"`(\w+)`", bullets))


def test_all_equals_the_names_the_readme_documents():
    assert _documented_names() == set(tether.__all__)
    assert len(tether.__all__) == len(set(tether.__all__))


def test_every_public_name_resolves():
    for name in tether.__all__:
        assert getattr(tether, name) is not None, name


def test_unknown_attribute_is_an_attribute_error():
    try:
        tether.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("tether.no_such_name resolved")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_import_tether_does_not_import_torch():
    modules = _modules_after("import tether")
    assert "tether" in modules
    assert "torch" not in modules


def test_cli_help_and_inspect_do_not_import_torch(tiny):
    for args in (["--help"], ["inspect", str(tiny["bert"])], ["run", "--help"]):
        modules = _modules_after(
            "from tether.cli.main import main\n"
            f"try:\n    main({args!r})\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code"
        )
        assert "tether.cli.main" in modules
        assert "torch" not in modules, args
