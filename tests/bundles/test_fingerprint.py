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


# -- verdicts with one cause at a time (issue 16) -----------------------------------------

from tether.bundles.fingerprint import Fingerprint  # noqa: E402


def _fp(texts=("t",), **outputs):
    """A fingerprint of one probe text: a flat list is that text's row."""

    def rows(value):
        tensor = torch.tensor(value, dtype=torch.float32)
        return tensor.reshape(1, -1) if tensor.dim() == 1 else tensor

    return Fingerprint(tuple(texts), {k: rows(v) for k, v in outputs.items()})


def test_absolute_difference_alone_fails_while_cosine_is_perfect():
    # Scaled by 2: cosine exactly 1, max abs diff 1.0.
    comparison = compare_fingerprints(_fp(x=[1.0, 1.0]), _fp(x=[2.0, 2.0]), Tolerance(0.5, 0.99))
    [diff] = comparison.outputs
    assert diff.cosine == pytest.approx(1.0) and diff.max_abs_diff == 1.0
    assert not diff.ok and not comparison.ok
    assert diff.problem == "2 of 2 elements differ by more than atol 0.5 (max abs diff 1)"
    assert compare_fingerprints(_fp(x=[1.0, 1.0]), _fp(x=[2.0, 2.0]), Tolerance(1.0, 0.99)).ok


def test_cosine_alone_fails_while_values_are_within_atol():
    # Tiny orthogonal vectors: every value within atol, direction entirely different.
    expected, actual = _fp(x=[1e-6, 0.0]), _fp(x=[0.0, 1e-6])
    comparison = compare_fingerprints(expected, actual, Tolerance(1e-4, 0.9))
    [diff] = comparison.outputs
    assert diff.max_abs_diff <= 1e-4 and diff.cosine == pytest.approx(0.0, abs=1e-9)
    assert not comparison.ok
    assert diff.problem == "cosine min 0.000000 < 0.9 (text 0)"
    assert compare_fingerprints(expected, actual, Tolerance(1e-4, -1.0)).ok


def test_both_limits_are_inclusive():
    exact = compare_fingerprints(_fp(x=[1.0, 1.0]), _fp(x=[1.5, 1.5]), Tolerance(0.5, 0.0))
    assert exact.ok and exact.max_abs_diff == 0.5
    expected, actual = _fp(x=[1.0, 0.0]), _fp(x=[1.0, 0.1])
    cosine = compare_fingerprints(expected, actual, Tolerance(1.0, 0.0)).min_cosine
    assert 0.99 < cosine < 1.0
    assert compare_fingerprints(expected, actual, Tolerance(1.0, cosine)).ok
    above = float(torch.nextafter(torch.tensor(cosine, dtype=torch.float64), torch.tensor(2.0)))
    assert not compare_fingerprints(expected, actual, Tolerance(1.0, above)).ok


def test_probe_texts_alone_make_the_verdict_fail():
    same = {"x": [1.0, 2.0]}
    comparison = compare_fingerprints(_fp(("a",), **same), _fp(("b",), **same), EXACT)
    assert all(o.ok for o in comparison.outputs)  # outputs identical
    assert not comparison.ok
    assert comparison.problems == ["the probe texts differ, so the outputs are not comparable"]
    assert "problem: the probe texts differ" in format_comparison(comparison)


def test_one_bad_output_among_good_ones_fails_and_figures_are_the_extremes():
    expected = _fp(a=[1.0, 0.0], b=[1.0, 1.0], c=[0.0, 3.0])
    actual = _fp(a=[1.0, 0.0], b=[1.0, 0.9], c=[0.0, 3.05])
    comparison = compare_fingerprints(expected, actual, Tolerance(0.06, 0.0))
    by_name = {o.name: o for o in comparison.outputs}
    assert [o.name for o in comparison.outputs] == ["a", "b", "c"]
    assert by_name["a"].ok and by_name["c"].ok and not by_name["b"].ok
    assert not comparison.ok
    assert comparison.max_abs_diff == pytest.approx(0.1, abs=1e-6)  # b, not the first or last
    cosines = [o.cosine for o in comparison.outputs]
    assert by_name["a"].cosine == 1.0 and by_name["c"].cosine == pytest.approx(1.0)
    assert comparison.min_cosine == min(cosines) == by_name["b"].cosine < 0.999
    data = comparison.to_dict()
    assert data["ok"] is False and data["min_cosine"] == comparison.min_cosine
    assert (data["tolerance"]["atol"], data["tolerance"]["min_cosine"]) == (0.06, 0.0)
    assert [o["name"] for o in data["outputs"]] == ["a", "b", "c"]


def test_an_output_missing_on_either_side_is_named():
    comparison = compare_fingerprints(_fp(a=[1.0]), _fp(a=[1.0], extra=[2.0]), EXACT)
    by_name = {o.name: o for o in comparison.outputs}
    assert by_name["a"].ok
    assert by_name["extra"].problem == "missing from the saved fingerprint"
    assert by_name["extra"].expected_shape is None and by_name["extra"].actual_shape == [1, 1]
    assert not comparison.ok and comparison.max_abs_diff == 0.0
    assert "not comparable" in format_comparison(comparison)


def test_equal_zero_outputs_compare_as_identical_and_empty_outputs_too():
    comparison = compare_fingerprints(_fp(z=[0.0, 0.0], e=[]), _fp(z=[0.0, 0.0], e=[]), EXACT)
    assert comparison.ok
    assert [(o.max_abs_diff, o.cosine) for o in comparison.outputs] == [(0.0, 1.0), (0.0, 1.0)]


def test_no_outputs_gives_no_figures():
    comparison = compare_fingerprints(_fp(), _fp(), EXACT)
    assert comparison.ok and comparison.max_abs_diff is None and comparison.min_cosine is None


def test_unknown_dtype_gets_the_auto_tolerance():
    from tether.tolerances import PRESETS

    assert Tolerance.for_dtype("int8") == Tolerance.for_dtype("auto") == PRESETS["cast-fp16"]
    reload = Tolerance.for_dtype("float32")
    assert (reload.atol, reload.min_cosine, reload.rtol) == (1e-4, 0.9999, None)


def test_a_corrupt_fingerprint_file_is_a_fingerprint_error(tmp_path):
    path = tmp_path / "fp.safetensors"
    path.write_bytes(b"\x00" * 7 + b"not safetensors")
    with pytest.raises(FingerprintError, match="unreadable"):
        load_fingerprint(path)


def test_only_outputs_wider_than_the_limit_are_sampled(tiny, monkeypatch):
    gpt2 = load(ModelSpec(str(tiny["gpt2"]), model_class="AutoModelForCausalLM"))
    width = gpt2.model.config.vocab_size
    monkeypatch.setattr(fp, "MAX_COLUMNS", width)  # exactly at the limit: kept whole
    whole = compute_fingerprint(gpt2)
    assert whole.columns == {} and whole.outputs["logits"].shape[-1] == width
    monkeypatch.setattr(fp, "MAX_COLUMNS", width - 1)
    sampled = compute_fingerprint(gpt2)
    assert set(sampled.columns) == {"logits"}  # the mask and hidden states are never sampled
    index = sampled.columns["logits"]
    assert torch.equal(sampled.outputs["logits"], whole.outputs["logits"].index_select(-1, index))
    assert torch.equal(index, index.sort().values) and len(set(index.tolist())) == width - 1


def test_recompute_like_samples_the_same_columns(tiny, monkeypatch):
    monkeypatch.setattr(fp, "MAX_COLUMNS", 16)
    gpt2 = load(ModelSpec(str(tiny["gpt2"]), model_class="AutoModelForCausalLM"))
    saved = compute_fingerprint(gpt2, texts=("one text", "another"))
    again = recompute_like(gpt2, saved)
    assert again.texts == ("one text", "another")
    assert again.outputs["logits"].shape == saved.outputs["logits"].shape
    assert torch.equal(again.outputs["logits"], saved.outputs["logits"])


# -- mutants that survived a mutation run (.ci/mutation fingerprint) -----------------------


def test_comparison_dict_has_every_figure_under_its_name():
    comparison = compare_fingerprints(_fp(("a",), x=[1.0]), _fp(("b",), x=[1.5]), EXACT)
    data = comparison.to_dict()
    assert set(data) == {"ok", "tolerance", "max_abs_diff", "min_cosine", "outputs", "problems"}
    assert data["max_abs_diff"] == 0.5 and data["min_cosine"] == pytest.approx(1.0)
    assert data["problems"] == ["the probe texts differ, so the outputs are not comparable"]
    assert data["ok"] is False and data["tolerance"]["atol"] == 0.0
    assert data["outputs"][0]["name"] == "x"


def test_only_two_or_more_dimensional_outputs_other_than_the_mask_are_sampled(bert, monkeypatch):
    monkeypatch.setattr(fp, "MAX_COLUMNS", 2)
    sampled = compute_fingerprint(bert)
    # The mask is (batch, seq) and wider than 2, yet kept whole; the pooled output is
    # (batch, hidden) and the hidden states (batch, seq, hidden): both sampled.
    assert set(sampled.columns) == {"last_hidden_state", "pooler_output"}
    assert sampled.outputs["attention_mask"].shape[-1] > 2
    assert sampled.outputs["pooler_output"].shape[-1] == 2


def test_column_samples_are_the_same_on_every_call():
    assert torch.equal(fp.sample_columns(5000), fp.sample_columns(5000))
    assert not torch.equal(fp.sample_columns(5000), torch.arange(fp.MAX_COLUMNS))


def test_recompute_like_keeps_columns_and_skips_samples_that_do_not_fit(bert):
    saved = compute_fingerprint(bert)
    width = saved.outputs["pooler_output"].shape[-1]
    saved.columns = {"pooler_output": torch.tensor([0, width]), "not_an_output": torch.tensor([0])}
    again = recompute_like(bert, saved)
    assert again.columns.keys() == saved.columns.keys()
    assert again.outputs["pooler_output"].shape[-1] == width  # index `width` is out of range
    by_name = {o.name: o for o in compare_fingerprints(saved, again, EXACT).outputs}
    assert by_name["pooler_output"].ok and "not_an_output" not in by_name


def test_output_diffs_carry_both_shapes_and_a_false_verdict():
    missing = compare_fingerprints(_fp(a=[1.0, 2.0]), _fp(), EXACT).outputs[0]
    assert (missing.expected_shape, missing.actual_shape, missing.ok) == ([1, 2], None, False)
    reshaped = compare_fingerprints(_fp(a=[1.0, 2.0]), _fp(a=[[1.0], [2.0]]), EXACT)
    diff = reshaped.outputs[0]
    assert (diff.expected_shape, diff.actual_shape, diff.ok) == ([1, 2], [2, 1], False)
    assert diff.problem == "shape [1, 2] -> [2, 1]" and not reshaped.ok
    same = compare_fingerprints(_fp(a=[1.0, 2.0]), _fp(a=[1.0, 2.0]), EXACT).outputs[0]
    assert (same.expected_shape, same.actual_shape, same.problem) == ([1, 2], [1, 2], None)


def test_at_exactly_atol_a_cosine_failure_is_reported_as_cosine():
    [diff] = compare_fingerprints(_fp(x=[1.0, 0.0]), _fp(x=[0.0, 1.0]), Tolerance(1.0, 0.5)).outputs
    assert diff.max_abs_diff == 1.0 and not diff.ok
    assert diff.problem == "cosine min 0.000000 < 0.5 (text 0)"


def test_format_comparison_lines():
    comparison = compare_fingerprints(_fp(a=[1.0, 2.0]), _fp(a=[1.0, 2.0], b=[3.0]), EXACT)
    lines = format_comparison(comparison).splitlines()
    assert lines[0] == "fingerprint (atol 0, min cosine per text 1.0):"
    assert lines[1].split() == [
        "a",
        "[1,",
        "2]",
        "max",
        "abs",
        "diff",
        "0,",
        "cosine",
        "min",
        "1.00000000",
        "ok",
    ]
    assert lines[2].split()[:4] == ["b", "None", "not", "comparable"]
    assert lines[2].endswith("not comparable  DIFFERS: missing from the saved fingerprint")
    assert len(lines) == 3


def test_the_report_header_names_exactly_the_limits_in_force():
    same = (_fp(a=[1.0]), _fp(a=[1.0]))

    def header(tolerance):
        return format_comparison(compare_fingerprints(*same, tolerance)).splitlines()[0]

    assert header(Tolerance(None, None)) == "fingerprint (no checks):"
    assert header(Tolerance(None, 0.9)) == "fingerprint (min cosine per text 0.9):"
    assert header(Tolerance(0.1, None, rtol=0.01)) == (
        "fingerprint (atol 0.1 + rtol 0.01 x |expected|):"
    )


def test_unreadable_fingerprint_files_say_which_file_and_what_to_do(tmp_path):
    absent = tmp_path / "absent.safetensors"
    with pytest.raises(FingerprintError) as info:
        load_fingerprint(absent)
    assert info.value.message == f"Fingerprint file {str(absent)!r} does not exist."
    assert info.value.hint == (
        "Re-save the bundle with `tether save`, which writes a fresh fingerprint."
    )
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 16)
    with pytest.raises(FingerprintError) as info:
        load_fingerprint(corrupt)
    assert info.value.message.startswith(f"Fingerprint file {str(corrupt)!r} is unreadable (")
    assert "NoneType" not in info.value.message and "Error: " in info.value.message
    assert info.value.hint == "Re-save the bundle from the original model with `tether save`."


def test_rtol_scales_with_the_expected_value_and_a_missing_atol_counts_as_zero():
    def ok(expected, actual, tolerance):
        return compare_fingerprints(_fp(x=expected), _fp(x=actual), tolerance).ok

    rtol_only = Tolerance(None, None, rtol=0.1)
    assert ok([10.0], [10.5], rtol_only)  # 0.5 <= 0.1 x 10
    assert not ok([1.0], [1.5], rtol_only)  # 0.5 > 0.1 x 1, and no atol to add
    assert ok([10.0], [10.5], Tolerance(0.0, None, rtol=0.1))


def test_shapes_lists_each_output_shape_by_name():
    assert _fp(a=[[1.0], [2.0]], b=[3.0]).shapes() == {"a": [2, 1], "b": [1, 1]}


def test_a_safetensors_file_of_another_format_is_named_with_its_format(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(1)}, str(path), metadata={"format": "other/1"})
    with pytest.raises(FingerprintError) as info:
        load_fingerprint(path)
    assert info.value.message == f"{str(path)!r} is not a tether fingerprint (format 'other/1')."
    assert info.value.hint == "Re-save the bundle with this version of tether."
