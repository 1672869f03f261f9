"""`tether push` / `tether pull` and hub repo ids in load(), load_bundle() and verify,
against a real `tether hub serve` (the client runs in subprocesses: HF_ENDPOINT is read at
import)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hub_server import HubServer
from tether import ModelSpec, save


@pytest.fixture(scope="module")
def bundle(tiny, tmp_path_factory) -> Path:
    return save(
        ModelSpec(str(tiny["bert"]), model_class="AutoModel"),
        tmp_path_factory.mktemp("push") / "bert-bundle",
    )


def _commit(push_output: str) -> str:
    return push_output.split("commit ", 1)[1].split()[0]


def test_push_pull_verify_load_by_repo_id(hub: HubServer, bundle: Path) -> None:
    pushed = hub.tether("push", str(bundle), "tether/pp-bert").stdout
    commit = _commit(pushed)
    assert "all match the manifest" in pushed and len(commit) == 40

    pulled = hub.tether("pull", "tether/pp-bert").stdout
    assert f"at commit {commit}" in pulled and "OK: bundle tether/pp-bert@" in pulled
    assert "max abs diff 0," in pulled

    verified = hub.tether("verify", "tether/pp-bert@main").stdout
    assert verified.startswith(f"OK: bundle tether/pp-bert@{commit}")

    out = hub.client(f"""
        import json
        import tether
        from tether.bundles.fingerprint import (
            compare_fingerprints, load_fingerprint, recompute_like)
        by_bundle = tether.load_bundle("tether/pp-bert")
        by_spec = tether.load(tether.ModelSpec("tether/pp-bert", model_class="BertModel"))
        by_tag = tether.bundle_spec("tether/pp-bert", revision="{commit}")
        expected = load_fingerprint(by_bundle.path / "fingerprint.tensors")
        diff = compare_fingerprints(expected, recompute_like(by_bundle, expected),
                                    tether.Tolerance.for_dtype("float32"))
        print(json.dumps({{
            "bundle_spec": [by_bundle.spec.source, by_bundle.spec.revision],
            "load_spec": [by_spec.spec.source, by_spec.spec.revision],
            "pinned": [by_tag.source, by_tag.revision],
            "max_diff": diff.max_abs_diff,
        }}))
    """)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bundle_spec"] == ["tether/pp-bert", commit]
    assert result["load_spec"] == ["tether/pp-bert", commit]
    assert result["pinned"] == ["tether/pp-bert", commit]
    assert result["max_diff"] == 0.0


@pytest.mark.slow
def test_pull_into_a_directory_by_branch(hub: HubServer, bundle: Path, tmp_path) -> None:
    pushed = hub.tether("push", str(bundle), "tether/pp-branch", "--revision", "exp/one").stdout
    commit = _commit(pushed)
    assert "@ exp/one" in pushed
    target = tmp_path / "pulled"
    out = hub.tether("pull", "tether/pp-branch@exp/one", str(target), "--json").stdout
    result = json.loads(out)
    assert result["ok"] and result["commit"] == commit and result["path"] == str(target)
    assert (target / "tether.json").is_file()
    # the main branch was not touched
    main = hub.client("""
        from huggingface_hub import HfApi
        print(sorted(HfApi().list_repo_files("tether/pp-branch")))
    """)
    assert "tether.json" not in main.stdout


@pytest.mark.slow
def test_push_without_xet_uses_lfs(hub: HubServer, bundle: Path) -> None:
    pushed = hub.tether(
        "push", str(bundle), "tether/pp-lfs", "--json", env={"HF_HUB_DISABLE_XET": "1"}
    ).stdout
    result = json.loads(pushed)
    assert "model.safetensors" in result["checked_by_lfs_sha256"]
    assert "config.json" in result["checked_by_download"]
    pulled = hub.tether("pull", "tether/pp-lfs", env={"HF_HUB_DISABLE_XET": "1"}).stdout
    assert f"at commit {result['commit']}" in pulled and "OK: bundle" in pulled


@pytest.mark.slow
def test_push_is_one_commit_and_removes_files_the_bundle_lacks(
    hub: HubServer, bundle: Path
) -> None:
    hub.client("""
        from huggingface_hub import HfApi
        api = HfApi()
        api.create_repo("pp-stale", exist_ok=True)
        api.upload_file(path_or_fileobj=b"old", path_in_repo="old/notes.txt",
                        repo_id="tether/pp-stale")
    """)
    result = json.loads(hub.tether("push", str(bundle), "tether/pp-stale", "--json").stdout)
    assert result["deleted"] == ["old/notes.txt"]
    out = hub.client("""
        import json
        from huggingface_hub import HfApi
        api = HfApi()
        print(json.dumps([len(api.list_repo_commits("tether/pp-stale")),
                          sorted(api.list_repo_files("tether/pp-stale"))]))
    """)
    commits, files = json.loads(out.stdout.strip().splitlines()[-1])
    manifest = json.loads((bundle / "tether.json").read_text())
    assert files == sorted([*manifest["files"], "tether.json", ".gitattributes"])
    assert commits == 3  # the repo's first commit, the old file, the whole bundle


def test_a_changed_bundle_is_not_pushed(hub: HubServer, bundle: Path, tmp_path) -> None:
    changed = tmp_path / "changed"
    shutil.copytree(bundle, changed)
    (changed / "config.json").write_text((changed / "config.json").read_text() + " ")
    out = hub.tether("push", str(changed), "tether/pp-changed", check=False)
    assert out.returncode == 2
    assert "changed since it was saved: config.json" in out.stderr
    exists = hub.client("""
        from huggingface_hub import HfApi
        print(HfApi().repo_exists("tether/pp-changed"))
    """)
    assert exists.stdout.strip() == "False"


def test_a_file_changed_on_the_hub_is_caught_on_pull(hub: HubServer, bundle: Path) -> None:
    hub.tether("push", str(bundle), "tether/pp-tamper")
    hub.client("""
        import json
        from huggingface_hub import HfApi, hf_hub_download
        config = json.load(open(hf_hub_download("tether/pp-tamper", "config.json")))
        config["layer_norm_eps"] = 0.5
        HfApi().upload_file(path_or_fileobj=json.dumps(config).encode(),
                            path_in_repo="config.json", repo_id="tether/pp-tamper")
    """)
    out = hub.tether("pull", "tether/pp-tamper", check=False)
    assert out.returncode == 1
    assert "FAILED: bundle tether/pp-tamper@" in out.stdout
    assert "files changed: config.json" in out.stdout
    load = hub.client(
        """
        import tether
        try:
            tether.load_bundle("tether/pp-tamper")
        except tether.BundleError as exc:
            print("refused:", exc.message)
        """
    )
    assert "refused:" in load.stdout and "config.json" in load.stdout


@pytest.mark.slow
def test_bytes_altered_in_the_hubs_storage_are_caught_on_pull(
    hub: HubServer, tiny, tmp_path
) -> None:
    """The hub serves a weight file whose stored bytes changed (same size, same name).

    Its own model: blobs are shared by content, and the other tests' bundle must stay whole.
    """
    bundle = save(ModelSpec(str(tiny["roberta"]), model_class="AutoModel"), tmp_path / "b")
    hub.tether("push", str(bundle), "tether/pp-bitrot")
    manifest = json.loads((bundle / "tether.json").read_text())
    sha = manifest["files"]["model.safetensors"]["sha256"]
    blob = next(p for p in hub.data.rglob(f"*{sha}*") if p.is_file())
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    out = hub.tether("pull", "tether/pp-bitrot", check=False)
    assert out.returncode == 1
    assert "files changed: model.safetensors" in out.stdout


@pytest.mark.slow
def test_the_hub_check_after_push_catches_a_difference(hub: HubServer, bundle: Path) -> None:
    pushed = hub.tether("push", str(bundle), "tether/pp-check", "--json").stdout
    commit = json.loads(pushed)["commit"]
    out = hub.client(f"""
        import tether
        from tether.hub.push import check_remote
        from tether.models.manifest import read_manifest
        manifest = read_manifest("{bundle}")
        expected = {{rel: meta["sha256"] for rel, meta in manifest.files.items()}}
        expected["tether.json"] = "0" * 64
        expected["model.safetensors"] = "1" * 64
        del expected["config.json"]
        try:
            check_remote("tether/pp-check", "{commit}", expected)
        except tether.HubIntegrityError as exc:
            print(exc.message)
    """)
    assert "differ from the manifest: model.safetensors, tether.json" in out.stdout
    assert "not in the bundle: config.json" in out.stdout


@pytest.mark.parametrize("kind", ["wrong", "revoked"])
def test_a_wrong_or_revoked_token_is_refused(hub: HubServer, bundle: Path, kind: str) -> None:
    if kind == "wrong":
        token = "hf_" + "x" * 34
    else:
        token = hub.cli("token", "create", "--user", "tether", "--scope", "write", "--name", "rv")
        token = token.strip()
        hub.cli("token", "revoke", "--name", "rv")
    out = hub.tether("push", str(bundle), f"tether/pp-{kind}", token=token, check=False)
    assert out.returncode == 2
    assert "error: The hub refused to push to 'tether/pp-" in out.stderr
    assert "HTTP 401" in out.stderr and "HF_TOKEN" in out.stderr
    assert token not in out.stderr + out.stdout
    pulled = hub.tether("pull", "tether/pp-bert", token=token, check=False)
    assert pulled.returncode == 2 and "HTTP 401" in pulled.stderr
    assert token not in pulled.stderr + pulled.stdout


@pytest.mark.slow
def test_a_read_token_cannot_push(hub: HubServer, bundle: Path) -> None:
    token = hub.cli("token", "create", "--user", "tether", "--scope", "read", "--name", "ro")
    out = hub.tether("push", str(bundle), "tether/pp-read", token=token.strip(), check=False)
    assert out.returncode == 2 and "HTTP 403" in out.stderr


@pytest.mark.slow
def test_a_private_repo_is_private(hub: HubServer, bundle: Path) -> None:
    hub.tether("push", str(bundle), "tether/pp-private", "--private")
    out = hub.tether("pull", "tether/pp-private", token=None, check=False)
    assert out.returncode == 2
    assert "error:" in out.stderr and "tether/pp-private" in out.stderr
    assert "OK: bundle" in hub.tether("pull", "tether/pp-private").stdout


def test_pull_of_a_missing_repo_or_revision(hub: HubServer) -> None:
    out = hub.tether("pull", "tether/pp-none", check=False)
    assert out.returncode == 2 and "the repo does not exist" in out.stderr
    out = hub.tether("pull", "tether/pp-bert@no-such-branch", check=False)
    assert out.returncode == 2 and "no such revision" in out.stderr


@pytest.mark.slow
def test_a_custom_code_bundle_travels_with_its_code_and_is_never_trusted_by_itself(
    hub: HubServer, tiny, tmp_path
) -> None:
    spec = ModelSpec(str(tiny["custom"]), model_class="AutoModel", trust_remote_code=True)
    bundle = save(spec, tmp_path / "custom")
    result = json.loads(hub.tether("push", str(bundle), "tether/pp-custom", "--json").stdout)
    assert "modeling_tiny_custom.py" in result["checked_by_download"]
    refused = hub.tether("pull", "tether/pp-custom", check=False)
    assert refused.returncode == 2 and "trust_remote_code" in refused.stderr
    pulled = hub.tether("pull", "tether/pp-custom", "--trust-remote-code").stdout
    assert "OK: bundle tether/pp-custom@" in pulled


def test_an_unreachable_hub_is_a_clear_error(hub: HubServer, bundle: Path) -> None:
    from hub_server import free_port

    dead = {"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    for args in (("pull", "tether/pp-bert"), ("push", str(bundle), "tether/pp-dead")):
        out = hub.tether(*args, env=dead, check=False)
        assert out.returncode == 2
        assert "Could not reach the hub at http://127.0.0.1:" in out.stderr
        assert "Check HF_ENDPOINT" in out.stderr
