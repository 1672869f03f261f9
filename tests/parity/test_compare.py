"""Parity: real tiny models, real hooks, real quantization and ONNX Runtime; no mocks."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import optional_import
from tether import ModelSpec, ParityError, ParityMismatchError, compare, load
from tether.bundles.probes import PROBE_TEXTS
from tether.cli.main import cli
from tether.parity.compare import neighbour_agreement, read_texts
from tether.tolerances import get_tolerance

FORTUNES = Path("/usr/share/games/fortunes")
PERTURB_MODULE = '''
def layer1_layernorm_eps(reference):
    """The reference model with one LayerNorm's eps changed, in layer 1 only."""
    reference.encoder.layer[1].output.LayerNorm.eps = 1e-3
    return reference


def noisy_numpy(reference):
    """A 'port' that is not a torch module: numpy in, numpy out, off by 1e-3."""
    import torch

    def forward(inputs):
        batch = {k: torch.as_tensor(v) for k, v in inputs.items()}
        with torch.inference_mode():
            hidden = reference(**batch).last_hidden_state
        return (hidden + 1e-3).numpy()

    return forward
'''


def real_texts(n: int, *, or_probe_texts: bool = False) -> list[str]:
    """``n`` real human-written texts (Debian fortunes).

    Without the corpus (the Debian package ``fortunes``) a test that reports figures on
    real text is skipped, naming what is missing, never run on the 12 probe texts
    under the same name; ``or_probe_texts=True`` is for tests whose claim holds on any
    text.
    """
    texts: list[str] = []
    if FORTUNES.is_dir():
        for path in sorted(FORTUNES.iterdir()):
            if path.is_file() and not path.suffix:
                raw = path.read_text(encoding="utf-8", errors="replace")
                texts += [" ".join(t.split()) for t in raw.split("\n%\n")]
    texts = [t for t in texts if 20 <= len(t) <= 300]
    if len(texts) < n:
        if or_probe_texts:
            return list(PROBE_TEXTS)
        pytest.skip(
            f"needs {n} real texts from the fortunes corpus ({FORTUNES}, Debian package "
            f"'fortunes'); found {len(texts)}"
        )
    random.Random(0).shuffle(texts)
    return texts[:n]


@pytest.fixture
def perturb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "perturb_models.py").write_text(textwrap.dedent(PERTURB_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "perturb_models"


def test_identical_models_have_zero_difference_and_pass(tiny):
    report = compare(str(tiny["bert"]), str(tiny["bert"]))
    assert report.passed and not report.failures
    assert report.first_divergence is None
    assert {o.name for o in report.outputs} == {"last_hidden_state", "pooler_output"}
    for item in [*report.outputs, report.embedding, *report.modules]:
        assert item.max_abs == 0.0 and item.mean_abs == 0.0
        assert item.cos_min == 1.0
    assert report.topk is None  # 12 probe texts are too few for top-k overlap
    assert any("at least 200" in n for n in report.notes)
    assert len(report.modules) > 30  # every Linear, LayerNorm, activation... was hooked
    assert "encoder.layer.1.attention" in report.blocks
    assert "PASS" in report.format()


def test_perturbed_layernorm_in_layer_1_is_named_first_divergence(tiny, perturb):
    report = compare(str(tiny["bert"]), f"{perturb}:layer1_layernorm_eps")
    assert not report.passed
    assert report.first_divergence.name == "encoder.layer.1.output.LayerNorm"
    by_name = {m.name: m for m in report.modules}
    before = report.modules[: report.modules.index(report.first_divergence)]
    assert len(before) > 15 and all(m.max_abs == 0 for m in before)  # layer 0 matches
    assert by_name["encoder.layer.1.intermediate"].max_abs == 0  # before the LayerNorm
    assert by_name["encoder.layer.1"].max_abs > 1e-5
    assert "First divergence: encoder.layer.1.output.LayerNorm" in report.format()


def test_custom_code_loaded_without_its_code_fails_naming_the_module(tiny):
    report = compare(
        str(tiny["custom"]),
        str(tiny["custom"]),
        spec_defaults={"trust_remote_code": True},
        b_ignore_custom_code=True,
    )
    assert not report.passed
    first = report.first_divergence
    assert first.name == "encoder.layer.1.intermediate.intermediate_act_fn"
    assert (first.type_a, first.type_b) == ("ReLU", "GELUActivation")
    assert report.layers[0].name == "embeddings" and report.layers[0].max_abs == 0
    with pytest.raises(ParityMismatchError, match="intermediate_act_fn"):
        report.check()


def test_error_grows_through_depth_after_the_perturbed_layer(tiny):
    model = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel")).model
    import copy

    changed = copy.deepcopy(model)
    changed.encoder.layer[0].attention.output.LayerNorm.eps = 1e-2
    report = compare(str(tiny["bert"]), changed)
    layers = {m.name: m.max_abs for m in report.layers}
    assert report.first_divergence.name == "encoder.layer.0.attention.output.LayerNorm"
    assert layers["embeddings"] == 0 < layers["encoder.layer.0"] <= layers["encoder.layer.1"]


def test_mapping_lines_up_renamed_modules(tiny):
    model = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel")).model

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            return self.inner(input_ids, attention_mask, token_type_ids)

    unmapped = compare(str(tiny["bert"]), Wrapped())
    assert unmapped.modules == [] and any("--rename" in n for n in unmapped.notes)
    mapped = compare(str(tiny["bert"]), Wrapped(), mapping=["=inner"])
    assert mapped.passed and len(mapped.modules) > 30


def test_numpy_callable_candidate_compares_final_outputs_only(tiny, perturb):
    report = compare(str(tiny["bert"]), f"{perturb}:noisy_numpy")
    assert report.kind_b == "callable" and report.modules == []
    (out,) = report.outputs
    assert out.name == "last_hidden_state ~ output"
    assert out.max_abs == pytest.approx(1e-3, rel=1e-2)
    assert not report.passed  # 1e-3 > fp32 atol
    looser = compare(
        str(tiny["bert"]), f"{perturb}:noisy_numpy", tolerance=get_tolerance(atol=2e-3)
    )
    assert looser.passed


def test_exact_transform_is_the_optimisers_fused_graph_and_stays_close(tiny, tmp_path):
    optional_import("onnxruntime", "onnx")
    report = compare(str(tiny["bert"]), transform="exact")
    assert report.kind_b == "onnx (exact)" and report.modules == []
    assert report.tolerance.name == "optimize-exact" and report.passed
    assert any("Layer by layer needs A as a PyTorch model" in n for n in report.notes)
    assert [o.name for o in report.outputs] == ["last_hidden_state"]  # the task's output
    assert 0 <= report.outputs[0].max_abs < 1e-4

    from tether.inference.engine import Engine
    from tether.inference.graphs.export import export_graph

    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    sample = dict(loaded.tokenizer(["hello world", "short"], padding=True, return_tensors="pt"))
    task = Engine(loaded, "embed").task
    path = export_graph(task.graph_module, sample, task.graph_output, tmp_path / "bert.onnx")
    from_file = compare(loaded, str(path))
    assert from_file.kind_b == "onnx"
    assert from_file.outputs[0].max_abs < 1e-4


def test_old_transform_names_are_refused_with_the_new_one(tiny):
    with pytest.raises(ParityError, match="Transform 'onnx' is now 'exact'"):
        compare(str(tiny["bert"]), transform="onnx")
    with pytest.raises(ParityError, match="Preset 'fp32' is now rerun"):
        compare(str(tiny["bert"]), tolerance="fp32")


@pytest.mark.parametrize("name", ["cast-fp16", "cast-bf16"])
def test_dtype_cast_is_judged_by_its_preset(tiny, name):
    report = compare(str(tiny["bert"]), transform=name)
    assert report.tolerance.name == name
    assert report.kind_b == f"pytorch ({name})"
    assert report.outputs[0].max_abs > 0  # the cast really happened
    strict = compare(str(tiny["bert"]), transform=name, tolerance="rerun")
    assert not strict.passed


def test_bf16_transform_is_the_optimisers_autocast_compared_layer_by_layer(tiny):
    report = compare(str(tiny["bert"]), transform="bf16")
    assert report.tolerance.name == "optimize-bf16"
    cast = compare(str(tiny["bert"]), transform="cast-bf16")
    # autocast keeps float32 weights, layer norms and softmax: closer than a weight cast
    assert 0 < report.outputs[0].max_abs < cast.outputs[0].max_abs
    assert len(report.modules) > 30  # the same module on both sides: every layer hooked


@pytest.mark.slow
def test_minilm_int8_transform_is_the_optimisers_int8(minilm_dir):
    texts = real_texts(200)
    report = compare("minilm", transform="int8", texts=texts, layers=False)
    emb, topk = report.embedding, report.topk
    assert report.tolerance.name == "optimize-int8" and report.kind_b == "onnx (int8)"
    assert emb.cos_min < emb.cos_mean < 1.0
    if len(texts) >= 200:  # fortunes installed; else 12 probe texts, too few for top-k
        assert topk.k == 10 and 0 < topk.mean_overlap < 1.0
    else:
        assert topk is None
    assert report.passed == (emb.cos_min >= 0.99)
    strict = compare("minilm", transform="int8", texts=texts[:40], tolerance="rerun", layers=False)
    assert not strict.passed


@pytest.mark.slow
def test_minilm_fp32_reloaded_from_disk_is_exact(minilm_dir, tmp_path):
    loaded = load(ModelSpec("minilm", model_class="AutoModel"))
    loaded.model.save_pretrained(tmp_path)
    loaded.tokenizer.save_pretrained(tmp_path)
    report = compare(
        loaded, str(tmp_path), texts=real_texts(200, or_probe_texts=True), layers=False
    )
    assert report.passed and report.tolerance.name == "rerun"
    assert all(o.max_abs == 0 for o in report.outputs)
    assert report.topk is None or report.topk.mean_overlap == 1.0


def test_neighbour_agreement_is_one_for_same_space_and_drops_for_noise():
    torch.manual_seed(0)
    x = torch.randn(50, 8)
    same = neighbour_agreement(x, x * 3.0, k=5)  # scaling keeps cosine neighbours
    assert same.mean_overlap == 1.0 and same.top1_agreement == 1.0
    noisy = neighbour_agreement(x, x + torch.randn(50, 8), k=5)
    assert noisy.mean_overlap < 0.9
    assert neighbour_agreement(x[:1], x[:1]) is None
    assert neighbour_agreement(x[:4], x[:4], k=10).k == 3


def test_read_texts_understands_lines_fortunes_and_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\ntwo\n")
    (tmp_path / "b.txt").write_text("first\nstill first\n%\nsecond\n%\n")
    (tmp_path / "c.jsonl").write_text('{"text": "x"}\n{"text": "y"}\n')
    assert read_texts(tmp_path / "a.txt") == ["one", "two"]
    assert read_texts(tmp_path / "b.txt") == ["first\nstill first", "second"]
    assert read_texts(tmp_path / "c.jsonl", limit=1) == ["x"]


# -- command line ---------------------------------------------------------------------------


def test_cli_identical_models_exit_0_with_json(tiny):
    result = CliRunner().invoke(cli, ["compare", str(tiny["bert"]), str(tiny["bert"]), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["passed"] and data["first_divergence"] is None
    assert data["outputs"][0]["max_abs"] == 0.0


def test_cli_custom_code_without_code_exits_1_naming_module(tiny, tmp_path):
    plot = tmp_path / "layers.png"
    args = [
        "compare",
        str(tiny["custom"]),
        str(tiny["custom"]),
        "--trust-remote-code",
        "--b-ignore-custom-code",
        "--plot",
        str(plot),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "First divergence: encoder.layer.1.intermediate.intermediate_act_fn" in result.output
    assert "ReLU in A, GELUActivation in B" in result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_without_trust_refuses_custom_code_model(tiny):
    result = CliRunner().invoke(cli, ["compare", str(tiny["custom"])])
    assert result.exit_code == 2
    assert "trust_remote_code" in result.output


def test_cli_bad_callable_exits_2_with_hint(tiny):
    result = CliRunner().invoke(cli, ["compare", str(tiny["bert"]), "no_such_mod:fn"])
    assert result.exit_code == 2
    assert "Cannot import 'no_such_mod:fn'" in result.output
    assert "->" in result.output


def test_spec_file_and_bundle_sides_load_the_same_model(tiny, tmp_path):
    from tether import save

    spec_file = ModelSpec(str(tiny["custom"]), model_class="AutoModel", trust_remote_code=True)
    spec_file.save(tmp_path / "spec.json")
    bundle = save(spec_file, tmp_path / "bundle")
    report = compare(
        str(tmp_path / "spec.json"), str(bundle), spec_defaults={"trust_remote_code": True}
    )
    assert report.passed and report.outputs[0].max_abs == 0
    assert report.first_divergence is None and len(report.modules) > 30


def test_cli_reads_texts_file_with_limit(tiny, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(f"text number {i} about the fox" for i in range(230)))
    args = ["compare", str(tiny["bert"]), "--texts", str(texts), "--limit", "200", "--json"]
    result = CliRunner().invoke(cli, [*args, "--no-layers"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["texts"] == 200 and data["topk"]["k"] == 10


def test_real_texts_skips_instead_of_passing_probe_texts_off_as_real(monkeypatch, tmp_path):
    import sys

    module = sys.modules[__name__]
    monkeypatch.setattr(module, "FORTUNES", tmp_path / "absent")
    with pytest.raises(pytest.skip.Exception, match="fortunes corpus"):
        real_texts(5)
    assert real_texts(5, or_probe_texts=True) == list(PROBE_TEXTS)
    corpus = tmp_path / "fortunes"
    corpus.mkdir()
    sayings = [f"saying number {i} is long enough to count as real text" for i in range(6)]
    (corpus / "misc").write_text("\n%\n".join(sayings) + "\n")
    (corpus / "misc.dat").write_text("binary index, ignored")
    monkeypatch.setattr(module, "FORTUNES", corpus)
    got = real_texts(5)
    assert len(got) == 5 and set(got) <= set(sayings)
