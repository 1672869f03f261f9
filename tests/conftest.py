"""Shared fixtures: tiny config-built models and the shipped all-MiniLM-L6-v2, offline."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

# Set before huggingface_hub is imported: it reads HF_* variables once, at import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest

import tiny_models


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--tiny-models-dir",
        metavar="DIR",
        default=None,
        help="keep the tiny test models in DIR across runs (built once, then only read); "
        "mutation testing (.ci/mutation) runs the tests once per mutant",
    )


@pytest.fixture(scope="session", autouse=True)
def _graph_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """tether's graph cache (``tether.optimization.fastpath``) in a temporary directory
    for the whole run, subprocesses included, instead of the user's ~/.cache."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


@pytest.fixture(scope="session")
def tiny(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """name -> directory of each tiny model (see tiny_models.BUILDERS).

    Built afresh in a temporary directory, or once into ``--tiny-models-dir`` and reused.
    Tests only read these directories.
    """
    kept = request.config.getoption("--tiny-models-dir")
    if kept is None:
        return tiny_models.build_all(tmp_path_factory.mktemp("tiny-models"))
    return kept_tiny_models(Path(kept))


def kept_tiny_models(
    root: Path, build: Callable[[Path], object] = tiny_models.build_all
) -> dict[str, Path]:
    """The tiny models kept in ``root``, built there first when absent or built by another
    version of ``tests/tiny_models.py`` (the marker file holds that file's hash)."""
    root = root.resolve()
    marker = root / ".complete"
    source = Path(tiny_models.__file__).read_bytes()
    version = f"built by tests/tiny_models.py sha256:{hashlib.sha256(source).hexdigest()}\n"
    if not marker.is_file() or marker.read_text(encoding="utf-8") != version:
        marker.unlink(missing_ok=True)
        build(root)
        marker.write_text(version, encoding="utf-8")
    return {name: root / name for name in tiny_models.BUILDERS}


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from tether.models.sources import default_model_dir

    return default_model_dir()


def under_ci() -> bool:
    """True on a CI system (CI=true), where a missing optional extra is a failure."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def optional_import(module: str, extra: str) -> object:
    """``pytest.importorskip`` that cannot hide tests in CI.

    Locally a missing optional dependency skips (with the pip extra to install); under
    ``CI=true`` it fails, because CI installs every extra and a broken import there must
    not turn a whole file of tests into skips. Works at module level and inside tests.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = f"optional dependency {module!r} is missing ({exc}); pip install 'tether[{extra}]'"
        if under_ci():
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


def expected_label(model_dir: Path, text: str) -> str:
    """The label a sequence-classification checkpoint gives ``text``, computed directly."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    with torch.inference_mode():
        logits = model(**tokenizer([text], return_tensors="pt")).logits[0]
    return str(model.config.id2label[int(logits.argmax())])
