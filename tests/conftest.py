"""Shared fixtures: tiny config-built models and the shipped all-MiniLM-L6-v2, offline."""

from __future__ import annotations

import os

# Set before huggingface_hub is imported: it reads HF_* variables once, at import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest

import tiny_models


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> directory of each tiny model (see tiny_models.BUILDERS)."""
    return tiny_models.build_all(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    from tether.models.sources import default_model_dir

    return default_model_dir()
