"""The unmodified huggingface_hub client against the hub server, default settings,
in-process (``endpoint=`` and ``token=`` as arguments, see hub_server.py)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

from hub_server import ThreadHub


def test_core_calls_with_default_client(hub: ThreadHub, tmp_path: Path) -> None:
    """whoami, create_repo, Xet upload_folder over 10 MB, downloads, listings, info."""
    api = hub.api()
    me = api.whoami()
    url1 = str(api.create_repo("core"))
    url2 = str(api.create_repo("core", exist_ok=True))
    up = tmp_path / "up"
    (up / "sub").mkdir(parents=True)
    big = os.urandom(6 * 1024 * 1024) * 2 + b"tail"
    (up / "weights.bin").write_bytes(big)
    (up / "config.json").write_text('{"a": 1}')
    (up / "sub" / "notes.txt").write_text("hello")
    api.upload_folder(folder_path=str(up), repo_id="tether/core")
    api.upload_file(path_or_fileobj=b"one more", path_in_repo="extra.txt", repo_id="tether/core")
    api.create_commit(
        "tether/core",
        operations=[CommitOperationAdd("added.txt", b"x"), CommitOperationDelete("extra.txt")],
        commit_message="add and delete",
    )
    files = api.list_repo_files("tether/core")
    tree = {f.path: f for f in api.list_repo_tree("tether/core", recursive=True)}
    info = api.model_info("tether/core", files_metadata=True)
    rinfo = api.repo_info("tether/core")
    path = hub.download("tether/core", "weights.bin")
    snap = hub.snapshot("tether/core")
    with pytest.raises(EntryNotFoundError):
        hub.download("tether/core", "missing.txt")

    assert me["name"] == "tether"
    assert url1 == url2 == f"{hub.endpoint}/tether/core"
    assert files == [".gitattributes", "added.txt", "config.json", "sub/notes.txt", "weights.bin"]
    assert tree["weights.bin"].lfs is not None
    assert sorted(p for p, f in tree.items() if not hasattr(f, "size")) == ["sub"]
    assert info.sha == rinfo.sha and len(info.siblings) == 5
    assert path.read_bytes() == big
    assert sorted(os.listdir(snap)) == [
        ".gitattributes",
        "added.txt",
        "config.json",
        "sub",
        "weights.bin",
    ]


def test_model_card_push_to_hub(hf_env: ThreadHub) -> None:
    """``ModelCard.push_to_hub`` (which asks /api/validate-yaml first); it takes no
    endpoint=, so huggingface_hub is pointed at the hub as HF_ENDPOINT would (hf_env)."""
    from huggingface_hub import ModelCard

    hf_env.api().create_repo("card", exist_ok=True)
    ModelCard("---\nlicense: mit\n---\n# Card\n").push_to_hub("tether/card")
    assert "license: mit" in hf_env.download("tether/card", "README.md").read_text()


def test_lfs_upload_without_xet(
    hub: ThreadHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HF_HUB_DISABLE_XET=1: the LFS batch API, multipart (12 MB) and basic (a .bin)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # read at call time
    api = hub.api()
    api.create_repo("lfs", exist_ok=True)
    up = tmp_path / "lfs-up"
    up.mkdir()
    data = os.urandom(12 * 1024 * 1024)
    (up / "big.safetensors").write_bytes(data)
    (up / "small.bin").write_bytes(b"\0small")
    api.upload_folder(folder_path=str(up), repo_id="tether/lfs")
    for name, want in (("big.safetensors", data), ("small.bin", b"\0small")):
        got = hub.download("tether/lfs", name, cache_dir=tmp_path / "lfs-cache").read_bytes()
        assert got == want, name


def test_revisions_branches_tags_commits(hub: ThreadHub) -> None:
    """Branches (one with a '/'), tags, commits as revisions; refs and commit listings."""
    api = hub.api()
    api.create_repo("revs", exist_ok=True)
    api.upload_file(path_or_fileobj=b"main v1", path_in_repo="f.txt", repo_id="tether/revs")
    api.create_branch("tether/revs", branch="feature/x")
    c = api.upload_file(
        path_or_fileobj=b"feature",
        path_in_repo="f.txt",
        repo_id="tether/revs",
        revision="feature/x",
    )
    api.create_tag("tether/revs", tag="v1.0", revision="feature/x")
    api.upload_file(path_or_fileobj=b"main v2", path_in_repo="f.txt", repo_id="tether/revs")

    def read(rev: str) -> str:
        return hub.download("tether/revs", "f.txt", revision=rev).read_text()

    refs = api.list_repo_refs("tether/revs")
    commits = api.list_repo_commits("tether/revs", revision="feature/x")
    assert (read("main"), read("feature/x"), read("v1.0"), read(c.oid)) == (
        "main v2",
        "feature",
        "feature",
        "feature",
    )
    assert sorted(b.name for b in refs.branches) == ["feature/x", "main"]
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1.0", c.oid)]
    titles = [x.title for x in commits]
    assert titles[0] == "Upload f.txt with huggingface_hub"
    assert titles[-1] == "initial commit" and len(titles) == 3
    assert api.model_info("tether/revs", revision="v1.0").sha == c.oid
    tree = [f.path for f in api.list_repo_tree("tether/revs", revision="feature/x")]
    assert tree == [".gitattributes", "f.txt"]


def test_stale_parent_commit_is_refused(hub: ThreadHub) -> None:
    """Two commits on the same parent: one lands, the other gets 412; nothing is lost."""
    api = hub.api()
    api.create_repo("race", exist_ok=True)
    parent = api.model_info("tether/race").sha
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def commit(name: str) -> None:
        barrier.wait()
        try:
            api.create_commit(
                "tether/race",
                parent_commit=parent,
                commit_message=name,
                operations=[CommitOperationAdd(name + ".txt", name.encode())],
            )
            results[name] = "ok"
        except HfHubHTTPError as exc:
            results[name] = exc.response.status_code

    threads = [threading.Thread(target=commit, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values(), key=str) == [412, "ok"]
    winner = next(k for k, v in results.items() if v == "ok")
    assert [c.title for c in api.list_repo_commits("tether/race")] == [winner, "initial commit"]
    assert api.list_repo_files("tether/race") == [".gitattributes", f"{winner}.txt"]


def test_token_commands_of_the_cli(hub: ThreadHub) -> None:
    """`tether hub token create/list/revoke`: the list never shows a token; a revoked one
    is refused (the commands write to the running server's database)."""
    token = hub.run(
        "hub", "token", "create", "--user", "tether", "--scope", "write", "--name", "temp"
    ).stdout.strip()
    assert token.startswith("hf_")
    assert token not in hub.run("hub", "token", "list").stdout
    assert hub.api(token).whoami()["name"] == "tether"
    revoked = hub.run("hub", "token", "revoke", "--token-stdin", stdin=token + "\n")
    assert "revoked 1" in revoked.stdout
    with pytest.raises(HfHubHTTPError) as refused:
        hub.api(token).whoami()
    assert refused.value.response.status_code == 401


def test_wrong_and_revoked_tokens_and_private_repos(hub: ThreadHub) -> None:
    """A wrong token gets 401; a revoked one too; a private repo hides from others."""
    with pytest.raises(HfHubHTTPError) as wrong:
        hub.api("hf_not_a_real_token").whoami()
    assert wrong.value.response.status_code == 401

    token = hub.create_token(name="temp-lib")
    assert hub.api(token).whoami()["name"] == "tether"
    assert hub.revoke_token("temp-lib") == 1
    with pytest.raises(HfHubHTTPError) as revoked:
        hub.api(token).whoami()
    assert revoked.value.response.status_code == 401

    api = hub.api()
    api.create_repo("secret", private=True, exist_ok=True)
    api.upload_file(path_or_fileobj=b"s", path_in_repo="s.txt", repo_id="tether/secret")
    with pytest.raises(RepositoryNotFoundError):
        hub.api(token=False).model_info("tether/secret")
    with pytest.raises(RepositoryNotFoundError):
        hub.download("tether/secret", "s.txt", token=False, cache_dir=hub.data.parent / "anon")

    reader = hub.api(hub.create_token(scope="read", name="reader"))
    assert reader.model_info("tether/secret").private is True
    with pytest.raises(HfHubHTTPError) as read_only:
        reader.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="tether/secret")
    assert type(read_only.value) is HfHubHTTPError
    assert read_only.value.response.status_code == 403


@pytest.mark.slow
def test_50mb_weight_file_round_trips(hub: ThreadHub, tmp_path: Path) -> None:
    """A 50 MB file up through Xet (the default) and back, byte-identical."""
    api = hub.api()
    api.create_repo("fifty", exist_ok=True)
    data = os.urandom(50 * 1024 * 1024)
    (tmp_path / "fifty.safetensors").write_bytes(data)
    api.upload_file(
        path_or_fileobj=str(tmp_path / "fifty.safetensors"),
        path_in_repo="model.safetensors",
        repo_id="tether/fifty",
    )
    got = hub.download("tether/fifty", "model.safetensors", cache_dir=tmp_path / "c50")
    assert hashlib.sha256(got.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert got.stat().st_size == 50 * 1024 * 1024


def test_knowing_a_hash_does_not_grant_its_bytes(hub: ThreadHub) -> None:
    """An LFS oid stored for one repo cannot be committed into another without its bytes."""
    from huggingface_hub.utils import get_session

    owner = hub.api()
    owner.create_repo("hidden-weights", private=True, exist_ok=True)
    data = b"secret weights" * 1000
    owner.upload_file(
        path_or_fileobj=data, path_in_repo="w.safetensors", repo_id="tether/hidden-weights"
    )
    sha, size = hashlib.sha256(data).hexdigest(), len(data)
    bob_token = hub.create_token(user="bob", name="bob")
    bob = hub.api(bob_token)
    bob.create_repo("steal")
    lines = [
        {"key": "header", "value": {"summary": "steal"}},
        {
            "key": "lfsFile",
            "value": {"path": "w.safetensors", "algo": "sha256", "oid": sha, "size": size},
        },
    ]
    r = get_session().post(
        hub.endpoint + "/api/models/bob/steal/commit/main",
        content="\n".join(json.dumps(x) for x in lines),
        headers={"authorization": "Bearer " + bob_token, "content-type": "application/x-ndjson"},
    )
    assert r.status_code == 422
    assert "w.safetensors" not in bob.list_repo_files("bob/steal")
