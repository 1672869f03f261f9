"""Fixtures for tests/hub: one hub server per session, on a thread of the test process
(see hub_server.py), and the client allowed online for each hub test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import optional_import

optional_import("fastapi", "hub")
optional_import("sqlalchemy", "hub")

from hub_server import ThreadHub, start_thread_hub  # noqa: E402


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadHub]:
    server = start_thread_hub(tmp_path_factory.mktemp("hub"))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _online(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The suite runs with HF_HUB_OFFLINE=1 (tests/conftest.py); a hub test talks to the
    loopback hub in-process, so huggingface_hub's offline switch is off for its duration
    (the constant it reads at call time, as huggingface_hub's own tests patch it), and
    hf_xet's cache is a temporary directory, not the user's."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_XET_CACHE", str(tmp_path_factory.getbasetemp() / "xet-cache"))


@pytest.fixture
def hf_env(hub: ThreadHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ThreadHub]:
    """huggingface_hub pointed at ``hub`` in this process as HF_ENDPOINT, HF_TOKEN and
    HF_HOME would point it in a fresh one, for code that takes no ``endpoint=``
    (transformers' ``from_pretrained``, ``tether.load_bundle("org/name")``, the `tether`
    command line). HF_ENDPOINT is read once, at import, into the constants patched here
    (the client reads them at call time) and into the endpoint of the module-level HfApi
    behind ``huggingface_hub.upload_file``, ``create_repo`` and the other functions."""
    from huggingface_hub import constants, hf_api

    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(hf_api.api, "endpoint", hub.endpoint)
    monkeypatch.setattr(
        constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
    )
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-login-store"))
    monkeypatch.setenv("HF_TOKEN", hub.token)
    yield hub
