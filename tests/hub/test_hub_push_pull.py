"""``tether.push`` / ``tether.pull`` and hub repo ids in load(), load_bundle() and verify,
against the hub server, in-process: push and pull with ``endpoint=``; the command line and
loading by repo id, which read HF_ENDPOINT, with huggingface_hub pointed at the hub (hf_env)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import tether
from hub_server import ThreadHub, free_port
from tether import ModelSpec, save


@pytest.fixture(scope="module")
def bundle(tiny, tmp_path_factory) -> Path:
    return save(
        ModelSpec(str(tiny["bert"]), model_class="AutoModel"),
        tmp_path_factory.mktemp("push") / "bert-bundle",
    )


def push(hub: ThreadHub, bundle: Path, repo_id: str, **kw) -> tether.PushResult:
    kw.setdefault("token", hub.token)
    return tether.push(bundle, repo_id, endpoint=hub.endpoint, **kw)


def pull(hub: ThreadHub, repo_id: str, **kw) -> tether.PullResult:
    kw.setdefault("token", hub.token)
    kw.setdefault("cache_dir", hub.data.parent / "pull-cache")
    return tether.pull(repo_id, endpoint=hub.endpoint, **kw)


def _commit(push_output: str) -> str:
    return push_output.split("commit ", 1)[1].split()[0]


def test_push_pull_verify_load_by_repo_id(hf_env: ThreadHub, bundle: Path) -> None:
    """The command line end to end, then loading by repo id (both read HF_ENDPOINT)."""
    from tether.bundles.fingerprint import compare_fingerprints, load_fingerprint, recompute_like

    pushed = hf_env.run("push", str(bundle), "tether/pp-bert")
    assert pushed.exit_code == 0, pushed.output
    commit = _commit(pushed.stdout)
    assert "all match the manifest" in pushed.stdout and len(commit) == 40

    pulled = hf_env.run("pull", "tether/pp-bert").stdout
    assert f"at commit {commit}" in pulled and "OK: bundle tether/pp-bert@" in pulled
    assert "max abs diff 0," in pulled

    verified = hf_env.run("verify", "tether/pp-bert@main").stdout
    assert verified.startswith(f"OK: bundle tether/pp-bert@{commit}")

    by_bundle = tether.load_bundle("tether/pp-bert")
    by_spec = tether.load(tether.ModelSpec("tether/pp-bert", model_class="BertModel"))
    by_tag = tether.bundle_spec("tether/pp-bert", revision=commit)
    expected = load_fingerprint(by_bundle.path / "fingerprint.tensors")
    diff = compare_fingerprints(
        expected, recompute_like(by_bundle, expected), tether.Tolerance.for_dtype("float32")
    )
    assert [by_bundle.spec.source, by_bundle.spec.revision] == ["tether/pp-bert", commit]
    assert [by_spec.spec.source, by_spec.spec.revision] == ["tether/pp-bert", commit]
    assert [by_tag.source, by_tag.revision] == ["tether/pp-bert", commit]
    assert diff.max_abs_diff == 0.0


def test_push_and_pull_take_an_endpoint(hub: ThreadHub, bundle: Path) -> None:
    """``endpoint=`` reaches every call: the result's URL and the pulled commit say so."""
    pushed = push(hub, bundle, "tether/pp-endpoint")
    assert pushed.url == f"{hub.endpoint}/tether/pp-endpoint"
    assert "config.json" in pushed.checked_by_download
    assert "model.safetensors" in pushed.checked_by_lfs_sha256
    pulled = pull(hub, "tether/pp-endpoint")
    assert pulled.ok and pulled.commit == pushed.commit
    assert pulled.report.comparison is not None
    assert pulled.report.comparison.max_abs_diff == 0.0


def test_pull_into_a_directory_by_branch(hub: ThreadHub, bundle: Path, tmp_path) -> None:
    pushed = push(hub, bundle, "tether/pp-branch", revision="exp/one")
    assert pushed.revision == "exp/one"
    target = tmp_path / "pulled"
    pulled = pull(hub, "tether/pp-branch", revision="exp/one", local_dir=target)
    assert pulled.ok and pulled.commit == pushed.commit and pulled.path == target
    assert (target / "tether.json").is_file()
    # the main branch was not touched
    assert "tether.json" not in hub.api().list_repo_files("tether/pp-branch")


def test_push_without_xet_uses_lfs(
    hub: ThreadHub, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    result = push(hub, bundle, "tether/pp-lfs")
    assert "model.safetensors" in result.checked_by_lfs_sha256
    assert "config.json" in result.checked_by_download
    pulled = pull(hub, "tether/pp-lfs")
    assert pulled.ok and pulled.commit == result.commit


def test_push_is_one_commit_and_removes_files_the_bundle_lacks(
    hub: ThreadHub, bundle: Path
) -> None:
    api = hub.api()
    api.create_repo("pp-stale", exist_ok=True)
    api.upload_file(path_or_fileobj=b"old", path_in_repo="old/notes.txt", repo_id="tether/pp-stale")
    result = push(hub, bundle, "tether/pp-stale")
    assert result.deleted == ["old/notes.txt"]
    manifest = json.loads((bundle / "tether.json").read_text())
    files = sorted(api.list_repo_files("tether/pp-stale"))
    assert files == sorted([*manifest["files"], "tether.json", ".gitattributes"])
    # the repo's first commit, the old file, the whole bundle
    assert len(api.list_repo_commits("tether/pp-stale")) == 3


def test_a_changed_bundle_is_not_pushed(hub: ThreadHub, bundle: Path, tmp_path) -> None:
    changed = tmp_path / "changed"
    shutil.copytree(bundle, changed)
    (changed / "config.json").write_text((changed / "config.json").read_text() + " ")
    with pytest.raises(tether.BundleError, match=r"changed since it was saved: config\.json"):
        push(hub, changed, "tether/pp-changed")
    assert not hub.api().repo_exists("tether/pp-changed")


def test_a_file_changed_on_the_hub_is_caught_on_pull(hf_env: ThreadHub, bundle: Path) -> None:
    hub = hf_env
    push(hub, bundle, "tether/pp-tamper")
    config = json.loads(hub.download("tether/pp-tamper", "config.json").read_text())
    config["layer_norm_eps"] = 0.5
    hub.api().upload_file(
        path_or_fileobj=json.dumps(config).encode(),
        path_in_repo="config.json",
        repo_id="tether/pp-tamper",
    )
    pulled = pull(hub, "tether/pp-tamper", check=False)
    assert not pulled.ok
    assert "FAILED: bundle tether/pp-tamper@" in pulled.format()
    assert "files changed: config.json" in pulled.format()
    with pytest.raises(tether.VerificationError, match="does not verify"):
        pull(hub, "tether/pp-tamper")
    with pytest.raises(tether.BundleError, match=r"config\.json"):
        tether.load_bundle("tether/pp-tamper")


@pytest.mark.slow
def test_bytes_altered_in_the_hubs_storage_are_caught_on_pull(
    hub: ThreadHub, tiny, tmp_path
) -> None:
    """The hub serves a weight file whose stored bytes changed (same size, same name).

    Its own model: blobs are shared by content, and the other tests' bundle must stay whole.
    """
    bundle = save(ModelSpec(str(tiny["roberta"]), model_class="AutoModel"), tmp_path / "b")
    push(hub, bundle, "tether/pp-bitrot")
    manifest = json.loads((bundle / "tether.json").read_text())
    sha = manifest["files"]["model.safetensors"]["sha256"]
    blob = next(p for p in hub.data.rglob(f"*{sha}*") if p.is_file())
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    pulled = pull(hub, "tether/pp-bitrot", check=False)
    assert not pulled.ok
    assert "files changed: model.safetensors" in pulled.format()


@pytest.mark.slow
def test_the_hub_check_after_push_catches_a_difference(hub: ThreadHub, bundle: Path) -> None:
    from tether.hub.push import check_remote
    from tether.models.manifest import read_manifest

    commit = push(hub, bundle, "tether/pp-check").commit
    manifest = read_manifest(bundle)
    expected = {rel: meta["sha256"] for rel, meta in manifest.files.items()}
    expected["tether.json"] = "0" * 64
    expected["model.safetensors"] = "1" * 64
    del expected["config.json"]
    with pytest.raises(tether.HubIntegrityError) as caught:
        check_remote("tether/pp-check", commit, expected, token=hub.token, endpoint=hub.endpoint)
    assert "differ from the manifest: model.safetensors, tether.json" in caught.value.message
    assert "not in the bundle: config.json" in caught.value.message


@pytest.mark.parametrize("kind", ["wrong", "revoked"])
def test_a_wrong_or_revoked_token_is_refused(hub: ThreadHub, bundle: Path, kind: str) -> None:
    if kind == "wrong":
        token = "hf_" + "x" * 34
    else:
        token = hub.create_token(name="rv")
        hub.revoke_token("rv")
    with pytest.raises(tether.HubAuthError) as refused:
        push(hub, bundle, f"tether/pp-{kind}", token=token)
    error = refused.value
    assert error.message.startswith("The hub refused to push to 'tether/pp-")
    assert "HTTP 401" in error.message and "HF_TOKEN" in error.hint
    assert error.status == 401 and error.repo_id == f"tether/pp-{kind}"
    assert token not in str(error) + repr(error.facts)
    with pytest.raises(tether.HubAuthError) as refused_pull:
        pull(hub, "tether/pp-endpoint", token=token)
    assert "HTTP 401" in refused_pull.value.message
    assert token not in str(refused_pull.value)


@pytest.mark.slow
def test_a_read_token_cannot_push(hub: ThreadHub, bundle: Path) -> None:
    token = hub.create_token(scope="read", name="ro")
    with pytest.raises(tether.HubAuthError) as refused:
        push(hub, bundle, "tether/pp-read", token=token)
    assert refused.value.status == 403 and "HTTP 403" in refused.value.message


@pytest.mark.slow
def test_a_private_repo_is_private(hub: ThreadHub, bundle: Path) -> None:
    push(hub, bundle, "tether/pp-private", private=True)
    other = hub.create_token(user="eve", name="eve")
    with pytest.raises(tether.HubNotFoundError) as hidden:
        pull(hub, "tether/pp-private", token=other)
    assert hidden.value.repo_id == "tether/pp-private"
    assert pull(hub, "tether/pp-private").ok


def test_pull_of_a_missing_repo_or_revision(hub: ThreadHub, bundle: Path) -> None:
    with pytest.raises(tether.HubNotFoundError, match="the repo does not exist"):
        pull(hub, "tether/pp-none")
    push(hub, bundle, "tether/pp-revs")
    with pytest.raises(tether.HubNotFoundError, match="no such revision") as missing:
        pull(hub, "tether/pp-revs", revision="no-such-branch")
    assert missing.value.error_code == "RevisionNotFound"


@pytest.mark.slow
def test_a_custom_code_bundle_travels_with_its_code_and_is_never_trusted_by_itself(
    hub: ThreadHub, tiny, tmp_path
) -> None:
    spec = ModelSpec(str(tiny["custom"]), model_class="AutoModel", trust_remote_code=True)
    bundle = save(spec, tmp_path / "custom")
    result = push(hub, bundle, "tether/pp-custom")
    assert "modeling_tiny_custom.py" in result.checked_by_download
    with pytest.raises(tether.UntrustedCustomCodeError, match="trust_remote_code"):
        pull(hub, "tether/pp-custom")
    assert pull(hub, "tether/pp-custom", trust_remote_code=True).ok


def test_an_unreachable_hub_is_a_clear_error(hub: ThreadHub, bundle: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    for call in (
        lambda: tether.pull("tether/pp-bert", endpoint=dead, token=hub.token),
        lambda: tether.push(bundle, "tether/pp-dead", endpoint=dead, token=hub.token),
    ):
        with pytest.raises(tether.HubError) as unreachable:
            call()
        assert unreachable.value.message.startswith(f"Could not reach the hub at {dead} ")
        assert "Check endpoint=" in unreachable.value.hint
    # the command line names HF_ENDPOINT, its only way to say where the hub is
    out = hub.tether("pull", "tether/pp-bert", env={"HF_ENDPOINT": dead}, check=False)
    assert out.returncode == 2
    assert "Could not reach the hub at http://127.0.0.1:" in out.stderr
    assert "Check HF_ENDPOINT" in out.stderr
