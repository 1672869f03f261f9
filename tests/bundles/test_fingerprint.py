import pytest
import torch
from safetensors.torch import save_file

from tether import FingerprintError, ModelSpec, Tolerance, load
from tether.bundles import fingerprint as fp
from tether.bundles.fingerprint import (
    compare_fingerprints,
    compute_fingerprint,
    format_comparison,
    load_fingerprint,
    recompute_like,
    save_fingerprint,
)
from tether.bundles.probes import PROBE_TEXTS

EXACT = Tolerance(atol=0.0, min_cosine=1.0)


@pytest.fixture(scope="module")
def bert(tiny):
    return load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))


def test_fingerprint_round_trips_through_safetensors(bert, tmp_path):
    original = compute_fingerprint(bert)
    path = save_fingerprint(original, tmp_path / "fp.safetensors")
    again = load_fingerprint(path)
    assert again.texts == PROBE_TEXTS
    assert again.outputs.keys() == {"attention_mask", "last_hidden_state", "pooler_output"}
    for name, tensor in original.outputs.items():
        assert torch.equal(tensor, again.outputs[name])


def test_same_model_compares_exactly(bert):
    comparison = compare_fingerprints(compute_fingerprint(bert), compute_fingerprint(bert), EXACT)
    assert comparison.ok
    assert comparison.max_abs_diff == 0.0
    assert comparison.min_cosine == 1.0


def test_changed_weight_exceeds_tolerance_with_diff_and_cosine(tiny):
    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    before = compute_fingerprint(loaded)
    with torch.no_grad():
        loaded.model.encoder.layer[0].output.dense.weight[0, 0] += 1.0
    comparison = compare_fingerprints(
        before, recompute_like(loaded, before), Tolerance(1e-4, 0.9999)
    )
    assert not comparison.ok
    hidden = {o.name: o for o in comparison.outputs}["last_hidden_state"]
    assert hidden.max_abs_diff > 1e-4 and hidden.cosine < 1.0
    assert "max abs diff" in hidden.problem
    text = format_comparison(comparison)
    assert "last_hidden_state" in text and "DIFFERS" in text


def test_small_drift_within_tolerance_passes(bert):
    before = compute_fingerprint(bert)
    drifted = compute_fingerprint(bert)
    drifted.outputs["pooler_output"] = drifted.outputs["pooler_output"] + 1e-6
    assert compare_fingerprints(before, drifted, Tolerance(1e-5, 0.9999)).ok
    assert not compare_fingerprints(before, drifted, EXACT).ok


def test_missing_or_reshaped_output_fails(bert):
    before = compute_fingerprint(bert)
    after = compute_fingerprint(bert)
    del after.outputs["pooler_output"]
    after.outputs["last_hidden_state"] = after.outputs["last_hidden_state"][:, :, :16]
    by_name = {o.name: o for o in compare_fingerprints(before, after, EXACT).outputs}
    assert "missing from the reloaded" in by_name["pooler_output"].problem
    assert "shape" in by_name["last_hidden_state"].problem


def test_different_probe_texts_are_not_comparable(bert):
    a = compute_fingerprint(bert)
    b = compute_fingerprint(bert, texts=(*PROBE_TEXTS[:-1], "another text"))
    comparison = compare_fingerprints(a, b, Tolerance(1.0, 0.0))
    assert not comparison.ok
    assert "probe texts differ" in comparison.problems[0]


def test_wide_outputs_keep_a_fixed_column_sample(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(fp, "MAX_COLUMNS", 64)
    gpt2 = load(ModelSpec(str(tiny["gpt2"]), model_class="AutoModelForCausalLM"))
    full_width = gpt2.model.config.vocab_size
    saved = compute_fingerprint(gpt2)
    assert saved.outputs["logits"].shape[-1] == 64 < full_width
    again = load_fingerprint(save_fingerprint(saved, tmp_path / "fp.safetensors"))
    assert torch.equal(again.columns["logits"], saved.columns["logits"])
    assert compare_fingerprints(again, recompute_like(gpt2, again), EXACT).ok


def test_tolerance_is_looser_for_half_precision():
    assert Tolerance.for_dtype("float32").atol < Tolerance.for_dtype("float16").atol
    assert Tolerance.for_dtype("bfloat16").min_cosine < Tolerance.for_dtype("float32").min_cosine


def test_a_file_that_is_not_a_fingerprint_is_rejected(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(FingerprintError, match="not a tether fingerprint"):
        load_fingerprint(path)
    with pytest.raises(FingerprintError, match="does not exist"):
        load_fingerprint(tmp_path / "absent.safetensors")
