"""The app's HTTP surface, through FastAPI's TestClient (no socket, no client library):
routing on the raw path, the one error shape, HEAD, and migration when the app starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tether.hub.server import ServerConfig, create_app
from tether.hub.server.serve import first_token


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict]]:
    config = ServerConfig(
        data_dir=tmp_path_factory.mktemp("app") / "data", public_url="http://testserver"
    )
    token = first_token(config, "tether")
    with TestClient(create_app(config)) as test_client:
        auth = {"authorization": f"Bearer {token}"}
        assert test_client.post("/api/repos/create", json={"name": "r"}, headers=auth).is_success
        yield test_client, auth


def test_the_app_migrates_its_database_when_it_starts(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path / "fresh", public_url="http://testserver")
    app = create_app(config)
    assert not (tmp_path / "fresh").exists()  # building the app touches nothing
    with TestClient(app) as test_client:
        assert test_client.get("/api/whoami-v2").status_code == 401
    assert (tmp_path / "fresh" / "hub.sqlite3").is_file()


def test_an_encoded_slash_stays_in_one_path_parameter(client) -> None:
    test_client, auth = client
    made = test_client.post("/api/models/tether/r/branch/feature%2Fx", json={}, headers=auth)
    assert made.status_code == 200
    info = test_client.get("/api/models/tether/r/revision/feature%2Fx").json()
    assert info["sha"] == test_client.get("/api/models/tether/r").json()["sha"]
    refs = test_client.get("/api/models/tether/r/refs").json()
    assert [b["name"] for b in refs["branches"]] == ["feature/x", "main"]
    assert "pullRequests" not in refs
    got = test_client.get("/tether/r/resolve/feature%2Fx/.gitattributes")
    assert got.status_code == 200 and got.headers["x-repo-commit"] == info["sha"]


def test_head_answers_the_download_headers_alone(client) -> None:
    test_client, _ = client
    head = test_client.head("/tether/r/resolve/main/.gitattributes")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0 and head.headers["etag"].startswith('"')


def test_errors_have_one_shape(client) -> None:
    test_client, auth = client
    missing = test_client.get("/tether/r/resolve/main/nope.txt")
    assert missing.status_code == 404 and missing.headers["x-error-code"] == "EntryNotFound"
    assert missing.json() == {"error": "Entry not found: nope.txt"}
    no_repo = test_client.get("/api/models/tether/none")
    assert no_repo.headers["x-error-code"] == "RepoNotFound"
    for method, path in (("GET", "/no/such/route"), ("DELETE", "/api/whoami-v2")):
        answer = test_client.request(method, path)
        assert answer.status_code == 404
        assert answer.json() == {"error": f"no route for {method} {path}"}
    exists = test_client.post("/api/repos/create", json={"name": "r"}, headers=auth)
    assert exists.status_code == 409
    assert exists.json()["url"] == "http://testserver/tether/r"
    bad = test_client.post("/api/repos/create", content=b"[1]", headers=auth)
    assert bad.status_code == 400 and "RepoRequest" in bad.json()["error"]
