"""conftest.py for huggingface_hub's own tests, run against a `tether hub serve`.

The sdist of huggingface_hub ships its tests but not their conftest.py; this one is copied
in its place by run_hf_api.py. It points the suite's constants (``ENDPOINT_STAGING``,
``TOKEN``, ``USER``, ``OTHER_TOKEN``, ``OTHER_USER``) at the server named by the
``TETHER_CONFORMANCE_*`` variables the runner sets, and provides the fixtures the tests
ask for: ``api``, ``repo_factory`` (repos made for one test and deleted after it),
``api_prod`` (skipped: no huggingface.co here) and ``mocker`` (a small stand-in for
pytest-mock, which is not installed). Tests marked ``production`` or ``git_lfs`` are
skipped: they need huggingface.co or the git-lfs tool.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest

from . import testing_constants as tc

ENDPOINT = os.environ["TETHER_CONFORMANCE_ENDPOINT"]
tc.ENDPOINT_STAGING = ENDPOINT
tc.USER = os.environ["TETHER_CONFORMANCE_USER"]
tc.FULL_NAME = tc.USER
tc.TOKEN = os.environ["TETHER_CONFORMANCE_TOKEN"]
tc.OTHER_USER = os.environ["TETHER_CONFORMANCE_OTHER_USER"]
tc.OTHER_TOKEN = os.environ["TETHER_CONFORMANCE_OTHER_TOKEN"]

from huggingface_hub import HfApi  # noqa: E402
from huggingface_hub.hf_api import RepoUrl  # noqa: E402

from .testing_utils import repo_name  # noqa: E402

RepoFactory = Callable[..., RepoUrl]
MARKERS = (
    "api",
    "transfer",
    "inference",
    "xet",
    "no_xet",
    "production",
    "deprecated",
    "git_lfs",
    "vcr",
)


def pytest_configure(config: pytest.Config) -> None:
    for name in MARKERS:
        config.addinivalue_line("markers", f"{name}: huggingface_hub's suite marker")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("production"):
            item.add_marker(pytest.mark.skip(reason="production: needs huggingface.co"))
        if item.get_closest_marker("git_lfs"):
            item.add_marker(pytest.mark.skip(reason="git_lfs: needs the git-lfs tool"))


@pytest.fixture(scope="session")
def api() -> HfApi:
    return HfApi(endpoint=ENDPOINT, token=tc.TOKEN)


@pytest.fixture
def api_prod() -> HfApi:
    pytest.skip("needs huggingface.co")


@pytest.fixture
def repo_factory(api: HfApi) -> Iterator[RepoFactory]:
    made: list[tuple[str, str, str]] = []

    def make(
        repo_type: str = "model", repo_id: str | None = None, token: str | None = None, **kw: Any
    ) -> RepoUrl:
        token = token or tc.TOKEN
        user = tc.OTHER_USER if token == tc.OTHER_TOKEN else tc.USER
        repo_id = repo_id or repo_name()
        if "/" not in repo_id:
            repo_id = f"{user}/{repo_id}"
        url = api.create_repo(repo_id, repo_type=repo_type, token=token, **kw)
        made.append((url.repo_id, repo_type, token))
        return url

    yield make
    for repo_id, repo_type, token in made:
        with contextlib.suppress(Exception):  # a test may have moved or deleted it
            api.delete_repo(repo_id, repo_type=repo_type, token=token, missing_ok=True)


class _Patch:
    def __init__(self, started: list[Any]) -> None:
        self._started = started

    def _start(self, patcher: Any) -> Any:
        self._started.append(patcher)
        return patcher.start()

    def __call__(self, target: str, *args: Any, **kw: Any) -> Any:
        return self._start(mock.patch(target, *args, **kw))

    def object(self, target: Any, attribute: str, *args: Any, **kw: Any) -> Any:
        return self._start(mock.patch.object(target, attribute, *args, **kw))

    def dict(self, target: Any, values: Any = (), **kw: Any) -> Any:
        return self._start(mock.patch.dict(target, values, **kw))


class Mocker:
    """What the suite uses of pytest-mock's ``mocker``."""

    Mock = mock.Mock
    MagicMock = mock.MagicMock
    ANY = mock.ANY
    call = mock.call

    def __init__(self) -> None:
        self._started: list[Any] = []
        self.patch = _Patch(self._started)

    def spy(self, obj: Any, name: str) -> Any:
        return self.patch.object(obj, name, side_effect=getattr(obj, name), autospec=True)

    def stopall(self) -> None:
        for patcher in reversed(self._started):
            patcher.stop()
        self._started.clear()


@pytest.fixture
def mocker() -> Iterator[Mocker]:
    m = Mocker()
    yield m
    m.stopall()
