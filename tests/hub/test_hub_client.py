"""The unmodified huggingface_hub client against `tether hub serve`, default settings."""

from __future__ import annotations

import json

import pytest

from hub_server import HubServer


def test_core_calls_with_default_client(hub: HubServer) -> None:
    """whoami, create_repo, Xet upload_folder over 10 MB, downloads, listings, info."""
    out = hub.client("""
        import json, os
        from huggingface_hub import (HfApi, ModelCard, hf_hub_download, snapshot_download,
                                     CommitOperationAdd, CommitOperationDelete)
        from huggingface_hub.errors import EntryNotFoundError
        api = HfApi()
        me = api.whoami()
        url1 = str(api.create_repo("core"))
        url2 = str(api.create_repo("core", exist_ok=True))
        os.makedirs("up/sub", exist_ok=True)
        big = os.urandom(6 * 1024 * 1024) * 2 + b"tail"
        open("up/weights.bin", "wb").write(big)
        open("up/config.json", "w").write('{"a": 1}')
        open("up/sub/notes.txt", "w").write("hello")
        first = api.upload_folder(folder_path="up", repo_id="tether/core")
        api.upload_file(path_or_fileobj=b"one more", path_in_repo="extra.txt",
                        repo_id="tether/core")
        api.create_commit("tether/core", operations=[
            CommitOperationAdd("added.txt", b"x"), CommitOperationDelete("extra.txt")],
            commit_message="add and delete")
        files = api.list_repo_files("tether/core")
        tree = {f.path: f for f in api.list_repo_tree("tether/core", recursive=True)}
        info = api.model_info("tether/core", files_metadata=True)
        rinfo = api.repo_info("tether/core")
        path = hf_hub_download("tether/core", "weights.bin")
        snap = snapshot_download("tether/core")
        try:
            hf_hub_download("tether/core", "missing.txt")
            missing = "no error"
        except EntryNotFoundError:
            missing = "EntryNotFoundError"
        card = ModelCard("---\\nlicense: mit\\n---\\n# Core\\n")
        card.push_to_hub("tether/core")
        print(json.dumps({
            "user": me["name"], "url1": url1, "url2": url2, "files": files,
            "lfs": tree["weights.bin"].lfs.sha256 if tree["weights.bin"].lfs else None,
            "dirs": sorted(p for p, f in tree.items() if not hasattr(f, "size")),
            "sha": info.sha, "rsha": rinfo.sha, "nsib": len(info.siblings),
            "same": open(path, "rb").read() == big,
            "snap": sorted(os.listdir(snap)), "missing": missing,
            "card": open(hf_hub_download("tether/core", "README.md")).read(),
        }))
    """)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["user"] == "tether"
    assert result["url1"] == result["url2"] == f"{hub.endpoint}/tether/core"
    assert result["files"] == [
        ".gitattributes",
        "added.txt",
        "config.json",
        "sub/notes.txt",
        "weights.bin",
    ]
    assert result["lfs"] is not None and result["dirs"] == ["sub"]
    assert result["sha"] == result["rsha"] and result["nsib"] == 5
    assert result["same"] is True
    assert result["snap"] == [".gitattributes", "added.txt", "config.json", "sub", "weights.bin"]
    assert result["missing"] == "EntryNotFoundError"
    assert "license: mit" in result["card"]


def test_lfs_upload_without_xet(hub: HubServer) -> None:
    """HF_HUB_DISABLE_XET=1: the LFS batch API, multipart (12 MB) and basic (a .bin)."""
    out = hub.client(
        """
        import hashlib, os
        from huggingface_hub import HfApi, hf_hub_download
        api = HfApi()
        api.create_repo("lfs", exist_ok=True)
        os.makedirs("lfs-up", exist_ok=True)
        data = os.urandom(12 * 1024 * 1024)
        open("lfs-up/big.safetensors", "wb").write(data)
        open("lfs-up/small.bin", "wb").write(b"\\0small")
        api.upload_folder(folder_path="lfs-up", repo_id="tether/lfs")
        for name, want in (("big.safetensors", data), ("small.bin", b"\\0small")):
            got = open(hf_hub_download("tether/lfs", name, cache_dir="lfs-cache"), "rb").read()
            assert got == want, name
        print("ok")
    """,
        env={"HF_HUB_DISABLE_XET": "1"},
    )
    assert out.stdout.strip().endswith("ok")


def test_revisions_branches_tags_commits(hub: HubServer) -> None:
    """Branches (one with a '/'), tags, commits as revisions; refs and commit listings."""
    out = hub.client("""
        import json
        from huggingface_hub import HfApi, hf_hub_download
        api = HfApi()
        api.create_repo("revs", exist_ok=True)
        api.upload_file(path_or_fileobj=b"main v1", path_in_repo="f.txt", repo_id="tether/revs")
        api.create_branch("tether/revs", branch="feature/x")
        c = api.upload_file(path_or_fileobj=b"feature", path_in_repo="f.txt",
                            repo_id="tether/revs", revision="feature/x")
        api.create_tag("tether/revs", tag="v1.0", revision="feature/x")
        api.upload_file(path_or_fileobj=b"main v2", path_in_repo="f.txt", repo_id="tether/revs")
        def read(rev):
            return open(hf_hub_download("tether/revs", "f.txt", revision=rev)).read()
        refs = api.list_repo_refs("tether/revs")
        commits = api.list_repo_commits("tether/revs", revision="feature/x")
        print(json.dumps({
            "main": read("main"), "branch": read("feature/x"), "tag": read("v1.0"),
            "commit": read(c.oid),
            "branches": sorted(b.name for b in refs.branches),
            "tags": [(t.name, t.target_commit) for t in refs.tags], "oid": c.oid,
            "titles": [x.title for x in commits],
            "tree": [f.path for f in api.list_repo_tree("tether/revs", revision="feature/x")],
            "info": api.model_info("tether/revs", revision="v1.0").sha,
        }))
    """)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert (r["main"], r["branch"], r["tag"], r["commit"]) == (
        "main v2",
        "feature",
        "feature",
        "feature",
    )
    assert r["branches"] == ["feature/x", "main"]
    assert r["tags"] == [["v1.0", r["oid"]]]
    assert r["titles"][0] == "Upload f.txt with huggingface_hub"
    assert r["titles"][-1] == "initial commit" and len(r["titles"]) == 3
    assert r["info"] == r["oid"]
    assert r["tree"] == [".gitattributes", "f.txt"]


def test_stale_parent_commit_is_refused(hub: HubServer) -> None:
    """Two commits on the same parent: one lands, the other gets 412; nothing is lost."""
    out = hub.client("""
        import json, threading
        from huggingface_hub import HfApi, CommitOperationAdd
        from huggingface_hub.errors import HfHubHTTPError
        api = HfApi()
        api.create_repo("race", exist_ok=True)
        parent = api.model_info("tether/race").sha
        results = {}
        barrier = threading.Barrier(2)
        def commit(name):
            barrier.wait()
            try:
                api.create_commit("tether/race", parent_commit=parent, commit_message=name,
                    operations=[CommitOperationAdd(name + ".txt", name.encode())])
                results[name] = "ok"
            except HfHubHTTPError as exc:
                results[name] = exc.response.status_code
        threads = [threading.Thread(target=commit, args=(n,)) for n in ("a", "b")]
        [t.start() for t in threads]; [t.join() for t in threads]
        titles = [c.title for c in api.list_repo_commits("tether/race")]
        print(json.dumps({"results": results, "titles": titles,
                          "files": api.list_repo_files("tether/race")}))
    """)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(r["results"].values(), key=str) == [412, "ok"]
    winner = next(k for k, v in r["results"].items() if v == "ok")
    assert r["titles"] == [winner, "initial commit"]
    assert r["files"] == [".gitattributes", f"{winner}.txt"]


def test_wrong_and_revoked_tokens_and_private_repos(hub: HubServer) -> None:
    """A wrong token gets 401; a revoked one too; a private repo hides from others."""
    wrong = hub.client(
        """
        from huggingface_hub import HfApi
        HfApi().whoami()
    """,
        token="hf_not_a_real_token",
        check=False,
    )
    assert wrong.returncode != 0 and "401" in wrong.stderr

    token = hub.cli(
        "token", "create", "--user", "tether", "--scope", "write", "--name", "temp"
    ).strip()
    assert token.startswith("hf_")
    assert token not in hub.cli("token", "list")
    ok = hub.client(
        "from huggingface_hub import HfApi; print(HfApi().whoami()['name'])", token=token
    )
    assert ok.stdout.strip() == "tether"
    assert "revoked 1" in hub.cli("token", "revoke", "--token-stdin", stdin=token)
    revoked = hub.client(
        "from huggingface_hub import HfApi; HfApi().whoami()", token=token, check=False
    )
    assert revoked.returncode != 0 and "401" in revoked.stderr

    hub.client("""
        from huggingface_hub import HfApi
        api = HfApi()
        api.create_repo("secret", private=True, exist_ok=True)
        api.upload_file(path_or_fileobj=b"s", path_in_repo="s.txt", repo_id="tether/secret")
    """)
    anon = hub.client(
        """
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import RepositoryNotFoundError
        for call in (lambda: HfApi().model_info("tether/secret"),
                     lambda: hf_hub_download("tether/secret", "s.txt", cache_dir="anon")):
            try:
                call()
                print("visible")
            except RepositoryNotFoundError:
                print("hidden")
    """,
        token=None,
    )
    assert anon.stdout.split() == ["hidden", "hidden"]

    reader = hub.cli("token", "create", "--user", "tether", "--scope", "read").strip()
    read_only = hub.client(
        """
        from huggingface_hub import HfApi
        api = HfApi()
        print(api.model_info("tether/secret").private)
        try:
            api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="tether/secret")
            print("wrote")
        except Exception as exc:
            print(type(exc).__name__, exc.response.status_code)
    """,
        token=reader,
    )
    assert read_only.stdout.split() == ["True", "HfHubHTTPError", "403"]


@pytest.mark.slow
def test_50mb_weight_file_round_trips(hub: HubServer) -> None:
    """A 50 MB file up through Xet (the default) and back, byte-identical."""
    out = hub.client("""
        import hashlib, os
        from huggingface_hub import HfApi, hf_hub_download
        api = HfApi()
        api.create_repo("fifty", exist_ok=True)
        data = os.urandom(50 * 1024 * 1024)
        open("fifty.safetensors", "wb").write(data)
        api.upload_file(path_or_fileobj="fifty.safetensors", path_in_repo="model.safetensors",
                        repo_id="tether/fifty")
        got = open(hf_hub_download("tether/fifty", "model.safetensors", cache_dir="c50"),
                   "rb").read()
        print(hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), len(got))
    """)
    assert out.stdout.split() == ["True", str(50 * 1024 * 1024)]


def test_knowing_a_hash_does_not_grant_its_bytes(hub: HubServer) -> None:
    """An LFS oid stored for one repo cannot be committed into another without its bytes."""
    owner = hub.client("""
        import hashlib
        from huggingface_hub import HfApi
        api = HfApi()
        api.create_repo("hidden-weights", private=True, exist_ok=True)
        data = b"secret weights" * 1000
        api.upload_file(path_or_fileobj=data, path_in_repo="w.safetensors",
                        repo_id="tether/hidden-weights")
        print(hashlib.sha256(data).hexdigest(), len(data))
    """)
    sha, size = owner.stdout.split()[-2:]
    bob = hub.cli("token", "create", "--user", "bob", "--scope", "write").strip()
    attempt = hub.client(
        f"""
        import json, os
        from huggingface_hub import HfApi
        from huggingface_hub.utils import get_session
        api = HfApi()
        api.create_repo("steal")
        lines = [{{"key": "header", "value": {{"summary": "steal"}}}},
                 {{"key": "lfsFile", "value": {{"path": "w.safetensors", "algo": "sha256",
                   "oid": "{sha}", "size": {size}}}}}]
        r = get_session().post(os.environ["HF_ENDPOINT"] + "/api/models/bob/steal/commit/main",
                               content="\\n".join(json.dumps(x) for x in lines),
                               headers={{"authorization": "Bearer " + os.environ["HF_TOKEN"],
                                        "content-type": "application/x-ndjson"}})
        print(r.status_code, api.list_repo_files("bob/steal"))
    """,
        token=bob,
    )
    assert attempt.stdout.split()[0] == "422"
    assert "w.safetensors" not in attempt.stdout
