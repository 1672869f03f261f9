"""PyTorchModelHubMixin models named by import path: loaded with the weight guard, saved
as bundles fingerprinted on tensor probes, verified."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file, save_file

from mixin_models import build_tiny_net
from tether import (
    ModelLoadError,
    ModelSpec,
    SpecError,
    WeightMismatchError,
    check_card,
    load,
    load_bundle,
    save,
    verify,
)

CLASS = "mixin_models:TinyNet"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return build_tiny_net(tmp_path_factory.mktemp("mixin") / "net", width=6)


def test_a_mixin_model_loads_by_import_path_with_its_config(net):
    loaded = load(ModelSpec(str(net), model_class=CLASS))
    assert type(loaded.model).__name__ == "TinyNet"
    assert loaded.model.inp.in_features == 6  # from config.json, not the default 8
    assert loaded.tokenizer is None and not loaded.model.training
    assert loaded.loading_info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}


@pytest.mark.parametrize(
    ("model_class", "says"),
    [
        ("mixin_models:NotAMixin", "without huggingface_hub's PyTorchModelHubMixin"),
        ("mixin_models:Nope", "has no torch.nn.Module class 'Nope'"),
        ("no_such_module_for_tether:Net", "cannot be imported"),
        ("mixin_models:TinyNet:x", "not an import path"),
    ],
)
def test_a_bad_import_path_is_a_spec_error(net, model_class, says):
    with pytest.raises(SpecError, match="model_class=") as info:
        ModelSpec(str(net), model_class=model_class)
    assert says in info.value.message and info.value.field == "model_class"


def test_missing_weights_are_refused_unless_allowed(net, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((net / "config.json").read_text())
    weights = load_file(net / "model.safetensors")
    del weights["out.bias"]
    weights["extra.weight"] = weights["out.weight"].clone()
    save_file(weights, partial / "model.safetensors")
    with pytest.raises(WeightMismatchError) as info:
        load(ModelSpec(str(partial), model_class=CLASS))
    assert info.value.missing_keys == ["out.bias"]
    assert info.value.unexpected_keys == ["extra.weight"]
    allowed = ModelSpec(
        str(partial), model_class=CLASS, allow_new_weights=True, allow_unused_weights=True
    )
    assert load(allowed).loading_info["missing_keys"] == ["out.bias"]


def test_no_safetensors_is_a_load_error(net, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((net / "config.json").read_text())
    with pytest.raises(ModelLoadError, match=r"model\.safetensors"):
        load(ModelSpec(str(bare), model_class=CLASS))


def test_a_mixin_bundle_is_fingerprinted_on_tensor_probes_and_verifies(net, tmp_path):
    bundle = save(ModelSpec(str(net), model_class=CLASS), tmp_path / "bundle")
    manifest = json.loads((bundle / "tether.json").read_text())
    assert manifest["spec"]["model_class"] == CLASS
    assert manifest["fingerprint"]["outputs"] == {"output": [8, 3]}
    report = verify(bundle)
    assert report.ok and report.comparison.max_abs_diff == 0.0, report.format()
    assert load_bundle(bundle).spec.model_class == CLASS
    card = check_card(bundle)
    assert card.sections["How to load"] == "present"
    assert "library_name: pytorch" in (bundle / "README.md").read_text()


def test_changed_weights_of_a_mixin_bundle_fail_verify(net, tmp_path):
    bundle = save(ModelSpec(str(net), model_class=CLASS), tmp_path / "bundle")
    weights = load_file(bundle / "model.safetensors")
    weights["out.bias"] = weights["out.bias"] + 0.01
    save_file(weights, bundle / "model.safetensors", metadata={"format": "pt"})
    report = verify(bundle)
    assert not report.ok
    assert report.changed == ["model.safetensors"]
    assert report.comparison is not None and not report.comparison.ok


def test_probes_of_your_own_are_stored_and_fed_again_on_verify(net, tmp_path):
    import torch

    from tether import BundleError
    from tether.bundles.fingerprint import load_fingerprint

    mine = torch.linspace(-1, 1, 5 * 6).reshape(5, 6)
    bundle = save(ModelSpec(str(net), model_class=CLASS), tmp_path / "b", probes=mine)
    stored = load_fingerprint(bundle / "fingerprint.tensors")
    assert torch.equal(stored.inputs, mine) and stored.texts[0] == "<given probe 0>"
    assert list(stored.outputs["output"].shape) == [5, 3]
    report = verify(bundle)
    assert report.ok and report.comparison.max_abs_diff == 0.0, report.format()
    with pytest.raises(BundleError, match=r"non-empty torch\.Tensor"):
        save(ModelSpec(str(net), model_class=CLASS), tmp_path / "c", probes=[[1.0] * 6])


def test_probes_of_your_own_are_refused_for_a_text_model(tiny, tmp_path):
    import torch

    from tether import BundleError

    with pytest.raises(BundleError, match="probes= was given"):
        save(
            ModelSpec(str(tiny["bert"]), model_class="AutoModel"),
            tmp_path / "b",
            probes=torch.zeros(2, 3),
        )
