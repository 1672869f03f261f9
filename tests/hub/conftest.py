"""Fixtures for tests/hub: one hub server per session, on a thread of the test process
(see hub_server.py), and the client allowed online for each hub test."""

from __future__ import annotations

from collections.abc import Iterator

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
