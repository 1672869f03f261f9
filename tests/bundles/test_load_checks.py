"""What load() checks on a bundle: every listed file unchanged (any size), nothing
unlisted that a loader could read, no path or symlink leaving the bundle."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from tether import BundleError, ModelSpec, load, load_bundle, save, verify
from tether.models import inspection


@pytest.fixture(scope="module")
def bundle(tiny, tmp_path_factory):
    return save(
        ModelSpec(str(tiny["bert"]), model_class="AutoModel"),
        tmp_path_factory.mktemp("checks") / "bert",
    )


@pytest.fixture
def copy(bundle, tmp_path):
    return Path(shutil.copytree(bundle, tmp_path / "copy", symlinks=True))


def _flip_one_byte_in_place(path: Path, offset: int) -> None:
    """A same-size edit that keeps the file's size (and, restored, its mtime)."""
    stat = path.stat()
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_same_size_edit_to_the_weights_is_refused_on_load(copy):
    weights = copy / "model.safetensors"
    load_bundle(copy)  # hashed and cached once
    _flip_one_byte_in_place(weights, weights.stat().st_size - 5)
    with pytest.raises(BundleError, match=r"changed since it was saved: model\.safetensors"):
        load_bundle(copy)


def test_large_weight_files_are_hashed_too(copy, monkeypatch):
    """The old rule hashed files up to 16 MB only; size alone no longer passes."""
    seen = []
    real = inspection.sha256_file
    monkeypatch.setattr(inspection, "sha256_file", lambda p, *a: seen.append(p.name) or real(p))
    inspection._HASHES.clear()
    load_bundle(copy)
    assert "model.safetensors" in seen


def test_hashes_are_cached_per_file_version(copy, monkeypatch):
    load_bundle(copy)
    calls = []
    real = inspection.sha256_file
    monkeypatch.setattr(inspection, "sha256_file", lambda p, *a: calls.append(p.name) or real(p))
    load_bundle(copy)
    assert calls == []  # nothing changed: a stat per file, no hashing
    (copy / "tokenizer.json").write_text(
        (copy / "tokenizer.json").read_text()
    )  # new ctime, same bytes
    load_bundle(copy)
    assert calls == ["tokenizer.json"]


@pytest.mark.parametrize(
    "name",
    ["modules.json", "1_Pooling/config.json", "sentence_bert_config.json", "added_tokens.json"],
)
def test_an_unlisted_file_a_loader_could_read_is_refused(copy, name):
    (copy / name).parent.mkdir(exist_ok=True)
    (copy / name).write_text("{}")
    with pytest.raises(BundleError, match="does not list") as info:
        load_bundle(copy)
    assert name in info.value.message
    report = verify(copy)
    assert not report.ok and report.extra == [name]


def test_byte_code_caches_and_hub_metadata_are_not_refused(copy):
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (copy / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    assert type(load_bundle(copy).model).__name__ == "BertModel"
    assert verify(copy).ok


@pytest.mark.parametrize("bad", ["../outside.json", "/etc/passwd", "a/../../b", "./config.json"])
def test_manifest_paths_outside_the_bundle_are_refused(copy, bad):
    manifest = json.loads((copy / "tether.json").read_text())
    manifest["files"][bad] = {"sha256": "0" * 64, "size": 1}
    (copy / "tether.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="outside the bundle") as info:
        load_bundle(copy)
    assert bad in info.value.message
    with pytest.raises(BundleError, match="outside the bundle"):
        verify(copy)


def test_a_symlink_leaving_the_bundle_fails_load_and_verify(copy, tmp_path):
    outside = tmp_path / "outside-tokenizer.json"
    shutil.copy(copy / "tokenizer.json", outside)  # same bytes: the hash alone would pass
    (copy / "tokenizer.json").unlink()
    (copy / "tokenizer.json").symlink_to(outside)
    with pytest.raises(BundleError, match=r"tokenizer\.json"):
        load_bundle(copy)
    report = verify(copy)
    assert not report.ok and "tokenizer.json" in report.changed


def test_an_unlisted_symlink_is_refused(copy, tmp_path):
    (tmp_path / "elsewhere.json").write_text("{}")
    (copy / "modules.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(BundleError, match=r"modules\.json"):
        load_bundle(copy)


def test_a_plain_load_of_the_same_directory_is_checked_the_same(copy):
    (copy / "modules.json").write_text("[]")
    with pytest.raises(BundleError, match="does not list"):
        load(ModelSpec(str(copy), model_class="BertModel"))


def test_verify_and_load_agree_on_a_clean_bundle(bundle):
    assert verify(bundle).ok
    loaded = load_bundle(bundle)
    assert torch.is_tensor(next(loaded.model.parameters()))
