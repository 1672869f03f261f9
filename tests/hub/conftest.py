"""Fixtures for tests/hub: one real `tether hub serve` per session (see hub_server.py)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from conftest import optional_import

optional_import("fastapi", "hub")
optional_import("sqlalchemy", "hub")

from hub_server import HubServer, start_server  # noqa: E402


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    server = start_server(tmp_path_factory.mktemp("hub"))
    yield server
    server.kill(signal.SIGTERM)
