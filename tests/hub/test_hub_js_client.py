"""The JavaScript client, ``@huggingface/hub`` from npm (the version tests/hub/js/package.json
pins, unmodified), against the hub on a loopback port: each call is a ``node
tests/hub/js/client.mjs SCENARIO ARGS`` run printing the client's answer as JSON, checked
against what huggingface_hub sees and against the bytes sent.

``npm ci`` installs the package from the committed lockfile when node_modules is absent
(.ci/run does it before pytest). Without node or npm these tests skip locally and fail
under CI=true.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from conftest import under_ci
from hub_server import ThreadHub

JS = Path(__file__).parent / "js"
CLIENT = JS / "client.mjs"
#: Over the server's 8 MiB LFS part size, so the upload is a multipart transfer of 2 parts.
BIG = 9 * 1024 * 1024 + 123


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with the pinned client installed by ``npm ci`` if needed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        reason = "needs node and npm (Node.js 20 or later) for the @huggingface/hub client"
        if under_ci():
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    if not (JS / "node_modules" / "@huggingface" / "hub" / "package.json").exists():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS,
            check=True,
            timeout=300,
        )
    return node


class JsClient:
    """``client.mjs`` as one user of the hub."""

    def __init__(self, node: str, hub: ThreadHub, token: str | None) -> None:
        self.node, self.hub, self.token = node, hub, token

    def __call__(self, scenario: str, **args: Any) -> Any:
        """The scenario's result; a client error fails the test with its message."""
        answer = self.call(scenario, **args)
        assert answer["ok"], f"{scenario} failed in the JS client: {answer['error']}"
        return answer["result"]

    def call(self, scenario: str, **args: Any) -> dict[str, Any]:
        """``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {...}}``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUB_"))}
        env["HUB_ENDPOINT"] = self.hub.endpoint
        if self.token:
            env["HUB_TOKEN"] = self.token
        out = subprocess.run(
            [self.node, str(CLIENT), scenario, json.dumps(args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, f"node {scenario}: {out.stderr[-4000:]}"
        return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def users(hub: ThreadHub) -> dict[str, str]:
    """Write tokens of two users of their own (the hub is shared by the session)."""
    return {user: hub.create_token(user, name=user) for user in ("jsclient", "jsother")}


@pytest.fixture
def js(node: str, hub: ThreadHub, users: dict[str, str]) -> JsClient:
    return JsClient(node, hub, users["jsclient"])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("use_xet", "protocol"),
    [(None, "xet"), (False, "lfs")],
    ids=["default-xet", "useXet-false-lfs"],
)
def test_js_upload_files_lands_one_commit(
    js: JsClient,
    hub: ThreadHub,
    users: dict[str, str],
    tmp_path: Path,
    use_xet: bool | None,
    protocol: str,
) -> None:
    """createRepo, then uploadFiles of three files in one commit. By default the client
    offers Xet in the LFS batch and the server takes it (xorbs and a shard to /_xet); with
    useXet false it is LFS, the 9 MiB file in two multipart parts. Either way the commit
    the client reports is the repo's head, and every file's bytes come back as sent."""
    api = HfApi(endpoint=hub.endpoint, token=users["jsclient"])
    repo = f"jsclient/uploaded-{protocol}"
    rng = random.Random(protocol)
    files = {
        "config.json": b'{"model_type": "bert", "hidden_size": 32}',
        "weights/small.bin": rng.randbytes(2000),
        "model.safetensors": rng.randbytes(BIG),
    }
    for path, data in files.items():
        (tmp_path / path.replace("/", "_")).write_bytes(data)

    created = js("createRepo", repo=repo)
    result = js(
        "uploadFiles",
        repo=repo,
        useXet=use_xet,
        commitTitle="three files from JS",
        files=[{"path": p, "file": str(tmp_path / p.replace("/", "_"))} for p in files],
    )

    info = api.model_info(repo, files_metadata=True)
    commits = api.list_repo_commits(repo)
    assert created == {"id": repo, "repoUrl": f"{hub.endpoint}/{repo}"}
    assert result["oid"] == info.sha == commits[0].commit_id
    assert result["url"] == f"{hub.endpoint}/{repo}/commit/{info.sha}"
    assert [c.title for c in commits] == ["three files from JS", "initial commit"]
    sent = result["requests"]
    big_sha = sha256(files["model.safetensors"])
    if protocol == "xet":
        assert any(r.startswith("POST /_xet/v1/xorbs/default/") for r in sent)
        assert "POST /_xet/v1/shards" in sent
        assert not any("/_lfs/" in r for r in sent)
    else:
        assert not any("/_xet/" in r for r in sent)
        parts = [r for r in sent if r.startswith("PUT /_lfs/") and big_sha in r]
        assert [p.rsplit("/", 2)[-2:] for p in parts] == [["part", "1"], ["part", "2"]]
    assert sent[-1] == f"POST /api/models/{repo}/commit/main"
    by_path = {s.rfilename: s for s in info.siblings or []}
    assert sorted(by_path) == sorted([".gitattributes", *files])
    big = by_path["model.safetensors"]
    assert big.lfs is not None and big.lfs.sha256 == big_sha
    assert big.size == BIG
    assert by_path["config.json"].lfs is None
    for path, data in files.items():
        assert hub.download(repo, path, token=users["jsclient"]).read_bytes() == data


def test_js_reads_what_huggingface_hub_uploaded(
    js: JsClient, hub: ThreadHub, users: dict[str, str], tmp_path: Path
) -> None:
    """modelInfo (revision HEAD), fileExists (/raw/ URLs), downloadFile and listFiles of a
    repo written by huggingface_hub: names, shas and bytes as huggingface_hub reports them."""
    api = HfApi(endpoint=hub.endpoint, token=users["jsclient"])
    weights = random.Random(7).randbytes(BIG)
    api.create_repo("jsclient/from-python")
    api.upload_file(
        path_or_fileobj=b'{"a": 1}', path_in_repo="config.json", repo_id="jsclient/from-python"
    )
    api.upload_file(
        path_or_fileobj=weights,
        path_in_repo="sub/model.safetensors",
        repo_id="jsclient/from-python",
    )
    info = api.model_info("jsclient/from-python")

    model = js("modelInfo", name="jsclient/from-python", additionalFields=["sha", "author"])
    exists = js("fileExists", repo="jsclient/from-python", path="sub/model.safetensors")
    missing = js("fileExists", repo="jsclient/from-python", path="sub/nope.bin")
    got = js(
        "downloadFile",
        repo="jsclient/from-python",
        path="sub/model.safetensors",
        out=str(tmp_path / "w"),
    )
    small = js(
        "downloadFile", repo="jsclient/from-python", path="config.json", out=str(tmp_path / "c")
    )
    none = js(
        "downloadFile", repo="jsclient/from-python", path="absent.txt", out=str(tmp_path / "x")
    )
    top = js("listFiles", repo="jsclient/from-python")
    deep = js("listFiles", repo="jsclient/from-python", recursive=True)

    assert model["name"] == "jsclient/from-python"
    assert model["sha"] == info.sha and model["author"] == "jsclient"
    assert model["private"] is False
    assert exists is True and missing is False
    assert got == {"size": BIG, "sha256": sha256(weights)}
    assert (tmp_path / "w").read_bytes() == weights
    assert small["size"] == 8 and (tmp_path / "c").read_bytes() == b'{"a": 1}'
    assert none is None
    assert [(e["type"], e["path"]) for e in top] == [
        ("file", ".gitattributes"),
        ("file", "config.json"),
        ("directory", "sub"),
    ]
    tree = {e.path: e for e in api.list_repo_tree("jsclient/from-python", recursive=True)}
    files = {e["path"]: e for e in deep if e["type"] == "file"}
    assert sorted(files) == sorted(p for p, e in tree.items() if hasattr(e, "blob_id"))
    for path, entry in files.items():
        assert entry["oid"] == tree[path].blob_id and entry["size"] == tree[path].size
    assert files["sub/model.safetensors"]["lfs"]["oid"] == sha256(weights)


def test_js_list_models_filters_by_search_and_owner(
    js: JsClient, hub: ThreadHub, users: dict[str, str]
) -> None:
    """listModels with search.query and search.owner; a private repo only for its owner."""
    other = HfApi(endpoint=hub.endpoint, token=users["jsother"])
    mine = HfApi(endpoint=hub.endpoint, token=users["jsclient"])
    for api, repo in (
        (mine, "jsclient/finder-bert"),
        (mine, "jsclient/finder-gpt"),
        (other, "jsother/finder-bert"),
    ):
        api.create_repo(repo)
    other.create_repo("jsother/finder-secret", private=True)
    as_other = JsClient(js.node, hub, users["jsother"])
    anonymous = JsClient(js.node, hub, None)

    def names(client: JsClient, **search: str) -> list[str]:
        return sorted(m["name"] for m in client("listModels", **search))

    assert names(js, query="finder-bert") == ["jsclient/finder-bert", "jsother/finder-bert"]
    assert names(js, query="FINDER", owner="jsclient") == [
        "jsclient/finder-bert",
        "jsclient/finder-gpt",
    ]
    assert names(js, owner="jsother") == ["jsother/finder-bert"]
    assert names(as_other, owner="jsother") == ["jsother/finder-bert", "jsother/finder-secret"]
    assert names(anonymous, query="finder-") == [
        "jsclient/finder-bert",
        "jsclient/finder-gpt",
        "jsother/finder-bert",
    ]
    listed = {m["name"]: m for m in js("listModels", owner="jsclient", additionalFields=["sha"])}
    assert listed["jsclient/finder-gpt"]["sha"] == mine.model_info("jsclient/finder-gpt").sha
    assert listed["jsclient/finder-gpt"]["private"] is False


def test_js_delete_file_and_repo(js: JsClient, hub: ThreadHub, users: dict[str, str]) -> None:
    """deleteFile makes a commit huggingface_hub sees; deleteRepo removes the repo; a
    second createRepo of a live repo is the client's 409 error."""
    api = HfApi(endpoint=hub.endpoint, token=users["jsclient"])
    js("createRepo", repo="jsclient/short-lived")
    api.upload_file(path_or_fileobj=b"x", path_in_repo="a.txt", repo_id="jsclient/short-lived")
    api.upload_file(path_or_fileobj=b"y", path_in_repo="b.txt", repo_id="jsclient/short-lived")

    again = js.call("createRepo", repo="jsclient/short-lived")
    deleted = js("deleteFile", repo="jsclient/short-lived", path="a.txt")

    assert again["ok"] is False and again["error"]["statusCode"] == 409
    assert deleted["oid"] == api.model_info("jsclient/short-lived").sha
    assert deleted["url"] == f"{hub.endpoint}/jsclient/short-lived/commit/{deleted['oid']}"
    assert sorted(api.list_repo_files("jsclient/short-lived")) == [".gitattributes", "b.txt"]
    assert js("deleteRepo", repo="jsclient/short-lived") == {"exists": False}
    assert not api.repo_exists("jsclient/short-lived")
