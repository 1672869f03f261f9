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


# -- the manifest checks, each on its own (issue 16) ---------------------------------------
#
# The mutation run of the manifest checks (`.ci/mutation manifest`) left mutants that
# changed a refusal's text or facts, the order in which problems are reported, which
# files count as present, the hub-cache exception for symlinks, and the class a spec is
# predicted to build. Each test below fails on such a mutant.

from tether import BundleClassMismatchError, IncompleteBundleError, SpecError  # noqa: E402
from tether.models.manifest import (  # noqa: E402
    Manifest,
    _class_mismatch,
    _predict_class,
    bundle_spec,
    check_files_on_load,
    escapes,
    present_files,
)


def _manifest(files=None, spec=None, name="BertModel"):
    return Manifest(
        spec=spec or {"model_class": "AutoModel", "task": None},
        model_class={"name": name, "module": "transformers", "custom_code": False},
        files=files or {},
        fingerprint={},
        versions={},
        origin={},
        created="2026-11-25T00:00:00Z",
    )


def _listed(root: Path, contents: dict[str, bytes]) -> dict[str, dict]:
    import hashlib

    files = {}
    for rel, data in contents.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        files[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    return files


def test_each_file_problem_is_reported_in_full_with_its_facts(tmp_path):
    files = _listed(tmp_path, {"a.json": b"{}", "sub/b.bin": b"12345"})
    manifest = _manifest(files)
    assert check_files_on_load(tmp_path, manifest) is None

    (tmp_path / "sub/b.bin").write_bytes(b"54321")  # same size, other bytes
    with pytest.raises(BundleError) as changed:
        check_files_on_load(tmp_path, manifest)
    assert type(changed.value) is BundleError
    assert changed.value.message == (
        f"Bundle {str(tmp_path)!r} has file(s) that changed since it was saved: sub/b.bin."
    )
    assert changed.value.hint == (
        "Run `tether verify BUNDLE` for the full report; restore the bundle from a "
        "trusted copy or re-save it."
    )
    assert changed.value.path == str(tmp_path)

    (tmp_path / "a.json").unlink()  # missing is reported before changed
    with pytest.raises(IncompleteBundleError) as missing:
        check_files_on_load(tmp_path, manifest)
    assert missing.value.message == (
        f"Bundle {str(tmp_path)!r} is missing file(s) listed in its manifest: a.json."
    )
    assert missing.value.hint == (
        "Restore the bundle from a complete copy (or re-save it), then run `tether verify BUNDLE`."
    )
    assert missing.value.missing == ["a.json"]
    assert missing.value.path == str(tmp_path)

    (tmp_path / "extra.py").write_text("x = 1")  # unlisted is reported before missing
    (tmp_path / "z.txt").write_text("z")
    with pytest.raises(BundleError) as unlisted:
        check_files_on_load(tmp_path, manifest)
    assert type(unlisted.value) is BundleError
    assert unlisted.value.message == (
        f"Bundle {str(tmp_path)!r} holds file(s) its manifest does not list: extra.py, "
        "z.txt. Loaders may read them (module configs, tokenizer files, code), so they "
        "could change the outputs unseen."
    )
    assert unlisted.value.hint == (
        "Remove them, or re-save the bundle so that the manifest covers them; "
        "`tether verify BUNDLE` shows the full report."
    )
    assert unlisted.value.path == str(tmp_path)


def test_a_size_change_alone_is_a_change(tmp_path, monkeypatch):
    files = _listed(tmp_path, {"w.bin": b"abc"})
    files["w.bin"]["size"] = 4  # the hash matches, the size does not
    with pytest.raises(BundleError) as error:
        check_files_on_load(tmp_path, _manifest(files))
    assert error.value.message.endswith("changed since it was saved: w.bin.")


def test_every_changed_and_missing_file_is_named_in_manifest_order(tmp_path):
    files = _listed(tmp_path, {"a": b"1", "b": b"2", "c": b"3", "d": b"4"})
    (tmp_path / "a").write_bytes(b"9")
    (tmp_path / "c").write_bytes(b"9")
    with pytest.raises(BundleError) as changed:
        check_files_on_load(tmp_path, _manifest(files))
    assert changed.value.message.endswith("changed since it was saved: a, c.")
    (tmp_path / "b").unlink()
    (tmp_path / "d").unlink()
    with pytest.raises(IncompleteBundleError) as missing:
        check_files_on_load(tmp_path, _manifest(files))
    assert missing.value.missing == ["b", "d"]
    assert missing.value.message.endswith("listed in its manifest: b, d.")


def test_the_model_card_may_change_on_load(tmp_path):
    files = _listed(tmp_path, {"README.md": b"# card", "config.json": b"{}"})
    (tmp_path / "README.md").write_text("# card, TODOs filled in")
    assert check_files_on_load(tmp_path, _manifest(files)) is None
    (tmp_path / "README.md").unlink()  # a doc file is never required either
    assert check_files_on_load(tmp_path, _manifest(files)) is None


def test_present_files_are_what_a_loader_could_read(tmp_path):
    for rel in (
        "config.json",
        "sub/deep/modules.json",
        "tether.json",
        ".gitattributes",
        "sub/.gitattributes",
        "__pycache__/m.pyc",
        "sub/__pycache__/x.pyc",
        ".cache/huggingface/x",
        ".git/HEAD",
        "tether.json.d/x",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "link.json").symlink_to(tmp_path / "nowhere")  # dangling: still a file entry
    assert present_files(tmp_path) == {
        "config.json",
        "sub/deep/modules.json",
        "tether.json.d/x",
        "link.json",
    }


def test_a_hub_cache_snapshot_may_link_into_its_own_blobs_only(tmp_path):
    repo = tmp_path / "models--org--m"
    snapshot = repo / "snapshots" / "abc123"
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "blobs" / "f00d").write_text("{}")
    (repo / "elsewhere").mkdir()
    (repo / "elsewhere" / "x").write_text("{}")
    (snapshot / "config.json").symlink_to(repo / "blobs" / "f00d")
    (snapshot / "other.json").symlink_to(repo / "elsewhere" / "x")
    (snapshot / "own.json").write_text("{}")
    assert not escapes(snapshot, "config.json")
    assert not escapes(snapshot, "own.json")
    assert escapes(snapshot, "other.json")
    # the same links outside a hub cache layout leave the bundle
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").symlink_to(repo / "blobs" / "f00d")
    assert escapes(plain, "config.json")


def test_a_class_mismatch_says_how_to_load_it_in_full(tmp_path):
    by_class = _class_mismatch(tmp_path, _manifest(), "BertForMaskedLM")
    assert isinstance(by_class, BundleClassMismatchError)
    assert by_class.message == (
        f"Bundle {str(tmp_path)!r} was saved and fingerprinted as BertModel, but is being "
        "loaded as BertForMaskedLM: its outputs would not be the ones it was saved with."
    )
    assert by_class.hint == (
        "Load it with model_class='AutoModel' (`tether.load_bundle(path)` reads it from "
        "the manifest). To put another head on these weights on purpose, load the original "
        "source with that class and save a new bundle."
    )
    assert (by_class.path, by_class.saved_class, by_class.requested_class) == (
        str(tmp_path),
        "BertModel",
        "BertForMaskedLM",
    )
    by_task = _class_mismatch(tmp_path, _manifest(spec={"task": "fill-mask"}), "X")
    assert by_task.hint.startswith("Load it with model_class=\"task='fill-mask'\" (")


def _config(tmp_path, **config):
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


@pytest.mark.parametrize(
    "spec, manifest_spec, saved, expected",
    [
        # the spec names the class the bundle was saved with: the saved class
        ({"model_class": "AutoModel"}, {"model_class": "AutoModel"}, "BertModel", "BertModel"),
        # a concrete class is predicted as itself
        (
            {"model_class": "BertForMaskedLM"},
            {"model_class": "AutoModel"},
            "BertModel",
            "BertForMaskedLM",
        ),
        # an Auto class resolves through transformers' mapping for the config's model_type
        (
            {"model_class": "AutoModelForMaskedLM"},
            {"model_class": "AutoModel"},
            "BertModel",
            "BertForMaskedLM",
        ),
        # no class: the task's class, resolved the same way
        (
            {"model_class": None, "task": "fill-mask"},
            {"model_class": "AutoModel"},
            "BertModel",
            "BertForMaskedLM",
        ),
        # sentence-transformers: only loading can tell the module stack; the class name
        ({"model_class": "AutoModel"}, {"model_class": None}, "SentenceTransformer", "AutoModel"),
        (
            {"model_class": None, "task": "feature-extraction"},
            {"model_class": None},
            "SentenceTransformer",
            "the class of task 'feature-extraction'",
        ),
    ],
)
def test_the_class_a_spec_will_build_is_predicted_without_loading(
    tmp_path, spec, manifest_spec, saved, expected
):
    path = _config(tmp_path, model_type="bert")
    manifest = _manifest(spec=manifest_spec, name=saved)
    assert _predict_class(ModelSpec("x", **spec), path, manifest) == expected


def test_the_class_a_bundle_was_saved_as_wins_for_the_same_model_class(tmp_path):
    """A spec naming the manifest's own model_class builds what the bundle was saved as,
    whatever transformers' mapping would say today."""
    path = _config(tmp_path, model_type="bert")
    manifest = _manifest(spec={"model_class": "AutoModel"}, name="SavedAsThis")
    assert _predict_class(ModelSpec("x", model_class="AutoModel"), path, manifest) == (
        "SavedAsThis"
    )


def test_a_task_class_is_picked_for_the_config_model_type(tmp_path):
    """As pipeline() does: SegFormer under image-segmentation is a semantic-segmentation
    model, although the task's first class is AutoModelForImageSegmentation."""
    path = _config(tmp_path, model_type="segformer")
    spec = ModelSpec("x", task="image-segmentation")
    assert _predict_class(spec, path, _manifest(name="X")) == "SegformerForSemanticSegmentation"


def test_verify_reports_a_listed_file_turned_dangling_link_as_missing(bundle, tmp_path):
    copy = Path(shutil.copytree(bundle, tmp_path / "copy", symlinks=True))
    (copy / "tokenizer_config.json").unlink()
    (copy / "tokenizer_config.json").symlink_to(copy / "gone.json")  # inside, to nothing
    report = verify(copy)
    assert report.missing == ["tokenizer_config.json"]
    assert report.changed == [] and not report.ok


def test_custom_code_classes_are_predicted_from_auto_map_only_with_trust(tmp_path):
    path = _config(
        tmp_path,
        model_type="tiny-custom",
        auto_map={
            "AutoModel": "modeling_tiny.TinyModel",
            "AutoModelForMaskedLM": ["modeling_tiny.TinyForMaskedLM", None],
        },
    )
    manifest = _manifest(spec={"model_class": "AutoConfig"}, name="TinyModel")

    def predict(**spec):
        return _predict_class(ModelSpec("x", **spec), path, manifest)

    assert predict(model_class="AutoModel", trust_remote_code=True) == "TinyModel"
    assert predict(model_class="AutoModelForMaskedLM", trust_remote_code=True) == (
        "TinyForMaskedLM"
    )
    # without trust, transformers has no class for this model_type: only loading can tell
    assert predict(model_class="AutoModel") is None
    # an Auto class the auto_map does not cover, with trust: transformers' mapping again
    assert predict(model_class="AutoModelForCausalLM", trust_remote_code=True) is None


def test_no_prediction_where_only_loading_can_tell(tmp_path):
    manifest = _manifest(name="BertModel")
    no_config = tmp_path / "none"
    no_config.mkdir()
    masked = ModelSpec("x", model_class="AutoModelForMaskedLM")
    assert _predict_class(masked, no_config, manifest) is None
    unknown_type = _config(tmp_path, model_type="no-such-type")
    assert _predict_class(masked, unknown_type, manifest) is None
    assert _predict_class(ModelSpec("x", task="fill-mask"), unknown_type, manifest) is None
    assert _predict_class(ModelSpec("x", task="fill-mask"), no_config, manifest) is None


def test_bundle_spec_points_at_the_bundle_and_takes_user_decisions_only_from_the_caller(
    bundle, tmp_path
):
    spec = bundle_spec(bundle)
    assert spec.source == str(Path(bundle).resolve())
    assert spec.revision is None
    assert (spec.trust_remote_code, spec.allow_pickle, spec.token_env) == (False, False, None)
    trusted = bundle_spec(bundle, trust_remote_code=True, device="cpu")
    assert trusted.trust_remote_code is True and trusted.device == "cpu"
    assert trusted.source == spec.source and trusted.model_class == spec.model_class
    with pytest.raises(SpecError) as unknown:
        bundle_spec(bundle, no_such_field=1)
    assert unknown.value.message.startswith("Unknown ModelSpec field in overrides: ")
    assert "no_such_field" in unknown.value.message
    assert unknown.value.hint == "Pass ModelSpec field names."
    assert "no_such_field" in unknown.value.field


@pytest.mark.parametrize(
    "relative, inside",
    [
        ("config.json", True),
        ("sub/modules.json", True),
        ("a.b/c..d", True),
        ("", False),
        (None, False),
        (5, False),
        ("a\\b", False),
        ("/etc/passwd", False),
        ("a//b", False),
        ("./a", False),
        ("a/./b", False),
        ("../a", False),
        ("a/../../b", False),
    ],
)
def test_a_manifest_path_is_relative_posix_and_stays_inside(relative, inside):
    from tether.models.manifest import _is_inside_path

    assert _is_inside_path(relative) is inside


def test_a_manifest_that_is_not_one_is_refused_in_full(tmp_path):
    where = tmp_path / "tether.json"
    with pytest.raises(BundleError) as wrong:
        Manifest.from_dict({"format": "other/9"}, where)
    assert wrong.value.message == (f"{where} is not a tether bundle manifest (format 'other/9').")
    assert wrong.value.hint == "Re-save the model with `tether save`."
    assert wrong.value.path == str(tmp_path)
    with pytest.raises(BundleError) as not_a_dict:
        Manifest.from_dict(["tether-bundle/1"], where)
    assert not_a_dict.value.message == (f"{where} is not a tether bundle manifest (format None).")
    good = _manifest().to_dict()
    with pytest.raises(IncompleteBundleError) as unfinished:
        Manifest.from_dict({**good, "complete": False}, where)
    assert unfinished.value.message == (
        f"{tmp_path} is a bundle whose save never finished (tether.json is the unfinished "
        "marker written when the save started)."
    )
    assert unfinished.value.hint == (
        "Delete the directory and save the model again with `tether save`."
    )
    assert unfinished.value.path == str(tmp_path)
    with pytest.raises(BundleError) as lacking:
        Manifest.from_dict({k: v for k, v in good.items() if k not in ("origin", "files")}, where)
    assert lacking.value.message == f"{where} lacks manifest field(s): files, origin."
    assert lacking.value.hint == "Re-save the model with `tether save`."
    assert lacking.value.path == str(tmp_path)
    outside = {**good, "files": {"../x": {}, "ok.json": {}, "/abs": {}}}
    with pytest.raises(BundleError) as escaping:
        Manifest.from_dict(outside, where)
    assert escaping.value.message == (
        f"{where} lists file path(s) outside the bundle: ../x, /abs; a manifest names files "
        "relative to the bundle, without '..'."
    )
    assert escaping.value.hint == (
        "Do not load this bundle; re-save the model from a trusted source."
    )
    assert escaping.value.path == str(tmp_path)
    assert Manifest.from_dict({**good, "unknown_later_field": 1}, where) == _manifest()
    before_optimised_bundles = {k: v for k, v in good.items() if k != "optimized"}
    assert Manifest.from_dict(before_optimised_bundles, where) == _manifest()


def test_a_directory_without_a_manifest_is_not_a_bundle_in_full(tmp_path):
    from tether.models.manifest import read_manifest

    with pytest.raises(BundleError) as error:
        read_manifest(tmp_path)
    assert type(error.value) is BundleError
    assert (
        error.value.message == f"{str(tmp_path)!r} is not a tether bundle: it has no tether.json."
    )
    assert error.value.hint == (
        "Pass a directory written by `tether save`, or save this model first "
        "(`tether save SOURCE OUT_DIR`)."
    )
    assert error.value.path == str(tmp_path)


def test_the_class_built_after_loading_is_checked_against_the_saved_one(tmp_path):
    from types import SimpleNamespace

    from tether.models.manifest import check_bundle_class

    class BertModel:  # what loading built, by name
        pass

    loaded = SimpleNamespace(model=BertModel(), path=tmp_path)
    assert check_bundle_class(_manifest(name="BertModel"), loaded) is None
    assert check_bundle_class(None, loaded) is None
    with pytest.raises(BundleClassMismatchError) as error:
        check_bundle_class(_manifest(name="BertForMaskedLM"), loaded)
    assert error.value.path == str(tmp_path)
    assert (error.value.saved_class, error.value.requested_class) == (
        "BertForMaskedLM",
        "BertModel",
    )


def test_bundle_spec_of_a_path_spelled_another_way_names_the_resolved_directory(bundle):
    roundabout = str(Path(bundle) / ".." / Path(bundle).name)
    assert bundle_spec(roundabout).source == str(Path(bundle).resolve())
