"""A bundle given as a hub repo id, found in the Hugging Face cache (offline, as the suite
runs): load(), load_bundle(), bundle_spec() and verify() accept it and pin its commit.

The cache is laid out as huggingface_hub writes it: files in ``blobs/`` named by hash,
``snapshots/<commit>/`` holding symlinks into them, ``refs/main`` naming the commit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from tether import (
    BundleError,
    ModelSpec,
    SpecError,
    bundle_spec,
    load,
    load_bundle,
    save,
    verify,
)
from tether.models.manifest import escapes
from tether.models.sources import pinned_commit

COMMIT = "1234567890abcdef1234567890abcdef12345678"


@pytest.fixture(scope="module")
def cache(tiny, tmp_path_factory) -> Path:
    """An HF cache holding one bundle as ``acme/bert`` at COMMIT (main)."""
    root = tmp_path_factory.mktemp("hf-cache")
    bundle = save(ModelSpec(str(tiny["bert"]), model_class="AutoModel"), root / "bundle")
    repo = root / "cache" / "models--acme--bert"
    snapshot = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    for file in sorted(p for p in bundle.rglob("*") if p.is_file()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / file.relative_to(bundle)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return root / "cache"


def _cached(cache: Path) -> dict:
    return {"load_kwargs": {"cache_dir": str(cache)}}


def test_load_bundle_by_repo_id_pins_the_commit(cache):
    loaded = load_bundle("acme/bert", **_cached(cache))
    assert type(loaded.model).__name__ == "BertModel"
    assert (loaded.spec.source, loaded.spec.revision) == ("acme/bert", COMMIT)
    assert loaded.path == cache / "models--acme--bert" / "snapshots" / COMMIT


def test_bundle_spec_by_repo_id_and_revision(cache):
    spec = bundle_spec("acme/bert", revision="main", **_cached(cache))
    assert (spec.source, spec.revision, spec.model_class) == ("acme/bert", COMMIT, "BertModel")
    assert load(spec).spec == spec  # a pinned spec loads as itself


def test_load_of_a_repo_id_returns_the_commit_in_its_spec(cache):
    loaded = load(ModelSpec("acme/bert", model_class="AutoModel", **_cached(cache)))
    assert loaded.spec.revision == COMMIT


def test_verify_by_repo_id_names_the_commit(cache):
    report = verify("acme/bert", **_cached(cache))
    assert report.ok, report.format()
    assert report.commit == COMMIT
    assert report.format().startswith(f"OK: bundle acme/bert@{COMMIT}")


def test_links_into_the_caches_blobs_are_the_bundles_own_files(cache, tmp_path):
    snapshot = cache / "models--acme--bert" / "snapshots" / COMMIT
    assert not escapes(snapshot, "config.json")
    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    link = snapshot / "planted.json"
    os.symlink(outside, link)
    try:
        assert escapes(snapshot, "planted.json")
        with pytest.raises(BundleError, match=r"planted\.json"):
            load_bundle("acme/bert", **_cached(cache))
    finally:
        link.unlink()


def test_a_local_directory_is_not_pinned_and_takes_no_revision(cache, tiny):
    snapshot = cache / "models--acme--bert" / "snapshots" / COMMIT
    assert pinned_commit(str(snapshot), snapshot) is None
    assert pinned_commit("acme/bert", snapshot) == COMMIT
    assert load_bundle(snapshot).spec.revision is None
    with pytest.raises(SpecError, match="revision"):
        bundle_spec(snapshot, revision="main")


def test_a_missing_name_is_still_not_a_bundle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BundleError, match="not a tether bundle"):
        load_bundle("no-such-bundle")


# -- bundle_spec of a hub id: the revision asked for, the token named (issue 16) -----------

OTHER = "fedcba0987654321fedcba0987654321fedcba09"


@pytest.fixture(scope="module")
def tagged(cache, tmp_path_factory) -> Path:
    """A copy of the cache where tag ``v1`` names another commit with the same files."""
    root = tmp_path_factory.mktemp("hf-cache-tagged") / "cache"
    shutil.copytree(cache, root, symlinks=True)
    repo = root / "models--acme--bert"
    shutil.copytree(repo / "snapshots" / COMMIT, repo / "snapshots" / OTHER, symlinks=True)
    (repo / "refs" / "v1").write_text(OTHER)
    return root


def test_bundle_spec_pins_the_revision_asked_for_not_main(tagged):
    spec = bundle_spec("acme/bert", revision="v1", **_cached(tagged))
    assert (spec.source, spec.revision) == ("acme/bert", OTHER)
    assert bundle_spec("acme/bert", **_cached(tagged)).revision == COMMIT


def test_bundle_spec_reads_the_token_variable_the_caller_names(cache, monkeypatch):
    monkeypatch.delenv("TETHER_TEST_NO_SUCH_TOKEN", raising=False)
    with pytest.raises(SpecError) as error:
        bundle_spec("acme/bert", token_env="TETHER_TEST_NO_SUCH_TOKEN", **_cached(cache))
    assert error.value.field == "token_env"
    monkeypatch.setenv("TETHER_TEST_NO_SUCH_TOKEN", "hf_" + "x" * 30)
    spec = bundle_spec("acme/bert", token_env="TETHER_TEST_NO_SUCH_TOKEN", **_cached(cache))
    assert spec.token_env == "TETHER_TEST_NO_SUCH_TOKEN" and spec.revision == COMMIT
