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


def test_lfs_batch_answers_the_transfer_the_client_offers(client) -> None:
    """xet when offered (the JS client): an upload action whose headers are a CAS token and
    whose href refreshes it; otherwise multipart, or basic when that alone is offered."""
    test_client, auth = client
    obj = {"oid": "ab" * 32, "size": 20 * 1024 * 1024}

    def batch(*transfers: str) -> dict:
        body = {"operation": "upload", "transfers": list(transfers), "objects": [obj]}
        body["ref"] = {"name": "main"}
        answer = test_client.post("/tether/r.git/info/lfs/objects/batch", json=body, headers=auth)
        assert answer.status_code == 200
        return answer.json()

    xet = batch("basic", "multipart", "xet")
    upload = xet["objects"][0]["actions"]["upload"]
    refreshed = test_client.get(upload["href"], headers=auth)
    assert xet["transfer"] == "xet"
    assert upload["href"] == "http://testserver/api/models/tether/r/xet-write-token/main"
    assert upload["header"]["X-Xet-Cas-Url"] == "http://testserver/_xet"
    assert upload["header"]["X-Xet-Access-Token"].startswith("xet1.")
    assert int(upload["header"]["X-Xet-Token-Expiration"]) > 0
    assert refreshed.status_code == 200
    assert refreshed.json()["casUrl"] == "http://testserver/_xet"
    dedup = f"/_xet/v1/chunks/default/{'cd' * 32}"
    cas_auth = {"authorization": f"Bearer {upload['header']['X-Xet-Access-Token']}"}
    no_dedup = test_client.get(dedup, headers=cas_auth)
    assert no_dedup.status_code == 404  # the route, not a missing one
    assert no_dedup.json() == {"error": "no global deduplication on this server"}
    multipart = batch("basic", "multipart")
    assert multipart["transfer"] == "multipart"
    assert "chunk_size" in multipart["objects"][0]["actions"]["upload"]["header"]
    assert batch("basic")["transfer"] == "basic"


def test_migration_0004_adds_the_raw_git_object_to_existing_commits(tmp_path: Path) -> None:
    """A data directory at 0003 (before `git push`) upgrades: its commits keep their rows
    and have no raw git object (the hub rebuilds theirs)."""
    import sqlalchemy as sa
    from alembic import command

    from tether.hub.server.migrate import alembic_config, upgrade

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    command.upgrade(alembic_config(url), "0003")
    engine = sa.create_engine(url)
    repo = "INSERT INTO repos VALUES (1, 'model', 'a', 'b', 0, '2026-01-01')"
    commit = (
        "INSERT INTO commits (repo_pk, oid, title, message, author, created_at, tree_json)"
        " VALUES (1, :oid, 't', '', 'a', '2026-01-01', '{}')"
    )
    with engine.begin() as conn:
        conn.execute(sa.text(repo))
        conn.execute(sa.text(commit), {"oid": "a" * 40})
    upgrade(url)
    with engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT oid, git_raw FROM commits")).all()
    assert [tuple(r) for r in rows] == [("a" * 40, None)]
