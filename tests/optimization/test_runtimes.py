"""The runtime per machine: OpenVINO beside ONNX Runtime and torch, chosen by measurement.

Bundles here are built with the real OpenVINO CPU plugin on the tiny BERT; the ranking is
the one ``optimize`` runs (judge each candidate, race those that pass, verify fastest
first). Which runtime wins on a tiny model says nothing about a real one, so tests of
``auto`` check that the evidence's figures and its choice agree, not who won.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from optimized_bundles import (
    copy_of,
    edit_evidence,
    embed_with_beam,
    embed_with_cli,
    exported_tiny_bert,
)
from tether import (
    MissingExtraError,
    OptimizationError,
    OptimizationMismatchError,
    SpecError,
    load_bundle,
    optimize,
)
from tether.bundles.optimized import GRAPH_NAME, REFERENCE_NAME, load_reference
from tether.cli.main import cli
from tether.errors import TaskError
from tether.inference.backends import OnnxBackend, OpenVinoBackend
from tether.inference.engine import Engine
from tether.inference.graphs.subjects import Autocast, OpenVinoGraph, build_subject
from tether.inference.optimized import task_vectors
from tether.models.manifest import read_manifest
from tether.optimization import build
from tether.optimization.runtimes import rank_runtimes
from tether.tolerances import OPTIMIZE_LEVELS
from tiny_models import CORPUS

TEXTS = list(dict.fromkeys(CORPUS))


def openvino_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import openvino`` fail in this test, as on a machine without the extra."""
    monkeypatch.setitem(sys.modules, "openvino", None)


def same_as_verified(got: np.ndarray, bundle: Path) -> None:
    """``got`` is what verification recorded for the bundle's runtime."""
    reference = load_reference(bundle / REFERENCE_NAME)
    assert np.abs(got - reference.optimized).max() <= 1e-6


@pytest.fixture(scope="module")
def ov_int8(tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static int8 bundle whose graph OpenVINO runs (the runtime named, not raced)."""
    out = tmp_path_factory.mktemp("ov") / "bert-int8-ov"
    return optimize(str(tiny["bert"]), out, level="int8", texts=TEXTS, runtime="openvino").path


@pytest.fixture(scope="module")
def ov_bf16(tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A bf16 bundle built on the command line: the float32 graph with OpenVINO's bf16
    products (the CPU is said to have bfloat16 units, as in test_bf16)."""
    root = tmp_path_factory.mktemp("ov-bf16")
    texts = root / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    out = root / "bert-bf16-ov"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(build, "has_cpu_feature", lambda feature: True)
        command = ["optimize", str(tiny["bert"]), str(out), "--level", "bf16", "-i", str(texts)]
        result = CliRunner().invoke(cli, [*command, "--runtime", "openvino"])
    assert result.exit_code == 0, result.output
    assert "runtime: openvino (precision bf16), requested openvino" in result.output
    assert "verified with openvino " in result.output
    yield out


# -- the backend ----------------------------------------------------------------------------


def test_openvino_runs_a_graph_as_onnx_runtime_does(tiny, tmp_path):
    _, batches = exported_tiny_bert(tiny["bert"], tmp_path, TEXTS[:8])
    graph = tmp_path / "export.onnx"
    ort, ov = OnnxBackend(graph), OpenVinoBackend(graph, threads=2)
    assert ov.input_names == ort.input_names and ov.output_names == ort.output_names
    for batch in batches:
        a, b = ort(batch), ov(batch)
        for name in ort.output_names:
            assert b[name].dtype == torch.float32 and b[name].shape == a[name].shape
            assert float((a[name] - b[name]).abs().max()) < 1e-4
    first = ov(batches[0])[ov.output_names[0]].clone()
    ov(batches[1])  # the request's buffers are reused: earlier results must not change
    assert torch.equal(first, ov(batches[0])[ov.output_names[0]])
    assert "precision=f32, threads=2" in repr(ov)


def test_openvino_backend_refuses_a_bad_precision_and_a_missing_input(tiny, tmp_path):
    _, batches = exported_tiny_bert(tiny["bert"], tmp_path, TEXTS[:4])
    with pytest.raises(ValueError, match="precision must be one of f32, bf16"):
        OpenVinoBackend(tmp_path / "export.onnx", precision="int4")
    backend = OpenVinoBackend(tmp_path / "export.onnx")
    without = {k: v for k, v in batches[0].items() if k != "attention_mask"}
    with pytest.raises(TaskError, match="needs input 'attention_mask'"):
        backend(without)


def test_openvino_backend_names_the_extra_when_openvino_is_missing(tiny, tmp_path, monkeypatch):
    exported_tiny_bert(tiny["bert"], tmp_path, TEXTS[:4])
    openvino_missing(monkeypatch)
    with pytest.raises(MissingExtraError) as caught:
        OpenVinoBackend(tmp_path / "export.onnx")
    assert caught.value.extra == "openvino" and "tether[openvino]" in caught.value.hint


# -- choosing by measurement ---------------------------------------------------------------


def test_auto_races_both_runtimes_and_keeps_the_faster(tiny, tmp_path):
    result = optimize(str(tiny["bert"]), tmp_path / "exact", level="exact", texts=TEXTS)
    evidence = result.evidence
    record = evidence.build["runtime"]
    assert record["requested"] == "auto" and record["race"] == {"texts": 20, "rounds": 3}
    rates = {c["runtime"]: c["texts_per_second"] for c in record["candidates"]}
    assert set(rates) == {"onnxruntime", "openvino"} and all(r > 0 for r in rates.values())
    assert record["chosen"] == max(rates, key=rates.__getitem__)
    assert evidence.runtime == record["chosen"]  # the machine record names what runs it
    for candidate in record["candidates"]:
        assert candidate["min_cosine"] >= OPTIMIZE_LEVELS["exact"].min_cosine
    assert f"runtime: {record['chosen']}" in result.summary()
    assert "chosen by measurement: onnxruntime " in result.summary()
    engine = Engine(load_bundle(result.path), "embed")
    assert engine.backend_name == f"{record['chosen']} (exact)"


def test_a_runtime_that_fails_the_level_is_recorded_and_not_raced(tiny, tmp_path):
    """The bf16 build's float32 graph with one weight scaled: OpenVINO runs a different
    model, the judge fails it before any timing, and autocast is the one left."""
    import onnx
    from onnx import numpy_helper

    from tether import ModelSpec, load

    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    built = build_subject(loaded, "embed", "bf16", TEXTS, tmp_path, float_graph=True)
    assert built.float_graph is not None and isinstance(built.subject, Autocast)
    graph = onnx.load(str(built.float_graph))
    weight = max(graph.graph.initializer, key=lambda t: np.prod(t.dims))
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * 1.5, weight.name))
    onnx.save(graph, str(built.float_graph))
    ranking = rank_runtimes(loaded, "embed", built, OPTIMIZE_LEVELS["bf16"])
    assert ranking.subjects == [built.subject]
    torch_entry, ov_entry = ranking.record["candidates"]
    assert ov_entry["runtime"] == "openvino" and ov_entry["precision"] == "bf16"
    assert ov_entry["min_cosine"] < 0.999 and ov_entry["failures"]
    assert "texts_per_second" not in ov_entry and "texts_per_second" not in torch_entry
    assert ranking.record["race"] is None  # one candidate left: nothing to race
    assert ranking.chosen(built.subject)["chosen"] == "torch"
    # named, the failing runtime is what verification runs (and refuses), not autocast
    named = rank_runtimes(loaded, "embed", built, OPTIMIZE_LEVELS["bf16"], runtime="openvino")
    assert named.subjects == [] and named.record["candidates"][0]["failures"]
    assert named.fallback == OpenVinoGraph(built.float_graph, "bf16")
    _, _, failures = build._verified(loaded, "embed", "bf16", built, TEXTS, named)
    assert failures


def test_static_int8_also_races_openvino_with_bfloat16_around_its_products(tiny, tmp_path):
    """A static int8 graph's products are int8 on either precision; OpenVINO's bf16
    runs attention, GELU and layer norms in bfloat16 (different numbers, judged by the
    int8 level), or is skipped on a CPU without bfloat16 units."""
    import openvino as ov

    from tether import ModelSpec, load

    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    built = build_subject(loaded, "embed", "int8", TEXTS, tmp_path)
    assert isinstance(built.subject, Path)
    ranking = rank_runtimes(loaded, "embed", built, OPTIMIZE_LEVELS["int8"])
    candidates = ranking.record["candidates"]
    assert [(c["runtime"], c.get("precision")) for c in candidates] == [
        ("onnxruntime", None),
        ("openvino", "f32"),
        ("openvino", "bf16"),
    ]
    f32, bf16 = (OpenVinoBackend(built.subject, precision=p) for p in ("f32", "bf16"))
    assert f32.effective_precision == "f32"
    task = Engine(loaded, "embed").task
    batch = dict(task.collate(task.encode(TEXTS[:8])))
    name = f32.output_names[0]
    difference = float((f32(batch)[name] - bf16(batch)[name]).abs().max())
    if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        assert bf16.effective_precision == "bf16" and difference > 1e-6
        assert "min_cosine" in candidates[2] and "skipped" not in candidates[2]
    else:
        assert bf16.effective_precision == "f32" and difference == 0.0
        assert candidates[2]["skipped"] == "this CPU has no bf16 arithmetic (OpenVINO runs f32)"
    raced = [c for c in candidates if "texts_per_second" in c]
    assert len(ranking.subjects) == len(raced) >= 2  # ORT and OpenVINO f32 pass
    chosen = ranking.chosen(ranking.subjects[0])
    fastest = max(raced, key=lambda c: c["texts_per_second"])
    assert (chosen["chosen"], chosen.get("precision")) == (
        fastest["runtime"],
        fastest.get("precision"),
    )


def test_a_graph_openvino_cannot_read_is_recorded_as_skipped(tiny, tmp_path):
    """A batched dynamic int8 graph fuses attention as com.microsoft.QAttention, which
    OpenVINO has no conversion for: ``auto`` records why and keeps ONNX Runtime."""
    from tether import Int8Scheme, ModelSpec, load

    loaded = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))
    scheme = Int8Scheme(activations="dynamic", one_text_per_run=False, sweep=False)
    built = build_subject(loaded, "embed", "exact", TEXTS, tmp_path, int8=scheme)
    ranking = rank_runtimes(loaded, "embed", built, OPTIMIZE_LEVELS["int8"])
    assert ranking.subjects == [built.subject]
    ov_entry = ranking.record["candidates"][1]
    assert ov_entry["skipped"] == (
        "cannot run this graph: No conversion rule found for operations: com.microsoft.QAttention"
    )
    with pytest.raises(TaskError, match="OpenVINO could not compile"):
        rank_runtimes(loaded, "embed", built, OPTIMIZE_LEVELS["int8"], runtime="openvino")


def test_auto_without_openvino_records_it_as_not_installed(tiny, tmp_path, monkeypatch):
    openvino_missing(monkeypatch)
    result = optimize(str(tiny["bert"]), tmp_path / "exact", level="exact", texts=TEXTS[:6])
    record = result.evidence.build["runtime"]
    assert record["chosen"] == "onnxruntime" and record["race"] is None
    ov_entry = record["candidates"][1]
    assert ov_entry["runtime"] == "openvino"
    assert ov_entry["skipped"].startswith("not installed: Install it with `pip install")
    assert "openvino f32 not installed" in result.summary()
    with pytest.raises(MissingExtraError, match="openvino"):
        optimize(str(tiny["bert"]), tmp_path / "ov", level="exact", runtime="openvino")
    assert not (tmp_path / "ov").exists()


def test_runtime_choices_are_checked(tiny, tmp_path):
    with pytest.raises(SpecError, match="Unknown runtime 'tensorrt'") as caught:
        optimize(str(tiny["bert"]), tmp_path / "x", level="exact", runtime="tensorrt")
    assert caught.value.field == "runtime"
    with pytest.raises(OptimizationError, match=r"runtime='torch' cannot run this build"):
        optimize(str(tiny["bert"]), tmp_path / "x", level="exact", runtime="torch")
    result = CliRunner().invoke(
        cli, ["optimize", str(tiny["bert"]), str(tmp_path / "x"), "--runtime", "torch"]
    )
    assert result.exit_code == 2 and "--runtime torch runs the model under autocast" in (
        result.output
    )
    assert not (tmp_path / "x").exists()


# -- OpenVINO bundles ----------------------------------------------------------------------


def test_openvino_int8_bundle_carries_its_runtime(ov_int8):
    manifest = read_manifest(ov_int8)
    evidence = manifest.optimized
    assert evidence is not None and evidence["graph"] == GRAPH_NAME
    assert evidence["machine"]["runtime"] == "openvino"
    assert evidence["machine"]["runtime_version"]
    record = evidence["build"]["runtime"]
    assert record["chosen"] == "openvino" and record["requested"] == "openvino"
    # OpenVINO's two precisions around the int8 products, raced when both pass
    offered = {c["precision"]: c for c in record["candidates"]}
    assert set(offered) == {"f32", "bf16"}
    rates = {p: c["texts_per_second"] for p, c in offered.items() if "texts_per_second" in c}
    assert record["precision"] == (max(rates, key=rates.__getitem__) if rates else "f32")
    assert (record["race"] is None) == (len(rates) < 2)
    assert evidence["build"]["int8"]["scheme"]["activations"] == "static"
    assert evidence["parity"]["batch_invariance"]["min_cosine"] >= 0.999
    assert GRAPH_NAME in manifest.files


def test_openvino_bundles_run_through_the_engine_cli_and_beam(ov_int8, ov_bf16, tmp_path):
    for bundle, level in ((ov_int8, "int8"), (ov_bf16, "bf16")):
        engine = Engine(load_bundle(bundle), "embed")
        assert engine.backend_name == f"openvino ({level})"
        assert engine.reverified is None  # same machine as the evidence
        texts = load_reference(bundle / REFERENCE_NAME).texts
        same_as_verified(task_vectors(engine.predict(texts)), bundle)
        run_dir = tmp_path / level
        run_dir.mkdir()
        same_as_verified(embed_with_cli(bundle, texts, run_dir), bundle)
        embed_with_beam(bundle, texts, lambda got, b=bundle: same_as_verified(got, b))


def test_openvino_bf16_bundle_runs_its_graph_in_bfloat16(ov_bf16):
    evidence = read_manifest(ov_bf16).optimized
    assert evidence is not None and evidence["graph"] == GRAPH_NAME
    assert "autocast" not in evidence["build"] and evidence["build"]["fusions"]
    assert evidence["build"]["runtime"]["precision"] == "bf16"
    reference = load_reference(ov_bf16 / REFERENCE_NAME)
    assert np.abs(reference.optimized - reference.expected).max() > 1e-5  # not float32


def test_another_openvino_re_verifies_and_refuses_when_it_no_longer_passes(
    ov_int8, tmp_path, caplog
):
    bundle = copy_of(ov_int8, tmp_path)
    edit_evidence(bundle, lambda e: e["machine"].update(runtime_version="0.0.1"))
    with caplog.at_level(logging.WARNING, logger="tether.inference.optimized"):
        engine = Engine(load_bundle(bundle), "embed")
    assert engine.reverified is not None and engine.reverified.passed
    assert "openvino 0.0.1 -> " in caplog.text

    def stricter(evidence: dict[str, Any]) -> None:
        evidence["tolerance"]["atol"] = 0.0
        evidence["tolerance"]["min_cosine"] = 1.0

    edit_evidence(bundle, stricter)
    with pytest.raises(OptimizationMismatchError, match=r"openvino 0.0.1 -> "):
        Engine(load_bundle(bundle), "embed")


def test_an_openvino_bundle_without_openvino_names_the_extra(ov_int8, monkeypatch):
    openvino_missing(monkeypatch)
    with pytest.raises(MissingExtraError, match="openvino") as caught:
        Engine(load_bundle(ov_int8), "embed")
    assert "tether[openvino]" in caught.value.hint
