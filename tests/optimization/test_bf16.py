"""The bf16 level: the original module under bfloat16 autocast, verified like a graph
(these bundles name ``runtime="torch"``; OpenVINO's bf16 is in test_runtimes.py).

Building is refused on a CPU without bfloat16 dot products (it would be emulated, slower
than float32); the tests that build one say the CPU has them, so they run on any machine
(autocast gives the same numbers emulated, only slower).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from optimized_bundles import copy_of, edit_evidence, embed_with_beam, embed_with_cli
from tether import (
    BundleError,
    Int8Scheme,
    OptimizationError,
    OptimizationMismatchError,
    SpecError,
    load_bundle,
    optimize,
)
from tether.bundles.optimized import GRAPH_NAME, REFERENCE_NAME, load_reference
from tether.cli.main import cli
from tether.inference.engine import Engine
from tether.inference.optimized import task_vectors
from tether.models.manifest import read_manifest
from tether.optimization import build
from tether.tolerances import OPTIMIZE_LEVELS, Tolerance
from tiny_models import CORPUS

TEXTS = list(dict.fromkeys(CORPUS))


def cpu_with_bf16(monkeypatch: pytest.MonkeyPatch, present: bool) -> None:
    monkeypatch.setattr(build, "has_cpu_feature", lambda feature: present)


@pytest.fixture(scope="module")
def bf16(tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Built through the command line, from the user's texts in a file."""
    root = tmp_path_factory.mktemp("bf16")
    texts = root / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    out = root / "bert-bf16"
    with pytest.MonkeyPatch.context() as patch:
        cpu_with_bf16(patch, True)
        result = CliRunner().invoke(
            cli,
            [
                "optimize", str(tiny["bert"]), str(out), "--level", "bf16", "-i", str(texts),
                "--runtime", "torch",
            ],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "optimised embed bundle (bf16) written to" in result.output
    assert "runs: its own float32 weights under bfloat16 autocast (PyTorch)" in result.output
    yield out


def autocast_not_float32(got: np.ndarray, bundle: Path) -> None:
    """``got`` is what verification recorded for the bundle, not the float32 outputs."""
    reference = load_reference(bundle / REFERENCE_NAME)
    assert np.abs(got - reference.optimized).max() <= 1e-6
    assert np.abs(got - reference.expected).max() > 1e-4  # bfloat16 products, not float32


# -- building -----------------------------------------------------------------------------


def test_bf16_bundle_carries_its_evidence_and_no_graph(bf16):
    manifest = read_manifest(bf16)
    evidence = manifest.optimized
    assert evidence is not None and evidence["level"] == "bf16"
    assert evidence["graph"] is None and evidence["build"]["autocast"] == "bfloat16"
    runtime = evidence["build"]["runtime"]
    assert runtime["requested"] == "torch" and runtime["chosen"] == "torch"
    assert [c["runtime"] for c in runtime["candidates"]] == ["torch"]
    assert "fusions" not in evidence["build"]  # no graph was built for it
    assert REFERENCE_NAME in manifest.files and GRAPH_NAME not in manifest.files
    assert not (bf16 / GRAPH_NAME).exists()
    assert evidence["tolerance"]["min_cosine"] == 0.999
    assert evidence["machine"]["runtime"] == "torch"
    assert evidence["machine"]["runtime_version"] == torch.__version__
    parity = evidence["parity"]
    for name in ("probes", "texts", "engine"):
        assert parity[name]["min_cosine"] >= 0.999
    assert parity["engine"]["max_abs_diff"] > 1e-4  # it really ran in bfloat16
    assert parity["batch_invariance"]["min_cosine"] >= 0.999


def test_bf16_is_refused_on_a_cpu_without_bf16(tiny, tmp_path, monkeypatch):
    cpu_with_bf16(monkeypatch, False)
    with pytest.raises(OptimizationError, match="none of avx512_bf16, amx_bf16") as caught:
        optimize(str(tiny["bert"]), tmp_path / "bf16", level="bf16")
    assert caught.value.level == "bf16" and "level='exact'" in caught.value.hint
    assert not (tmp_path / "bf16").exists()


def test_bf16_with_an_int8_scheme_is_refused(tiny, tmp_path, monkeypatch):
    cpu_with_bf16(monkeypatch, True)
    with pytest.raises(SpecError, match="int8= quantises an ONNX graph"):
        optimize(str(tiny["bert"]), tmp_path / "bf16", level="bf16", int8=Int8Scheme())
    assert not (tmp_path / "bf16").exists()


def test_bf16_on_the_command_line_refuses_int8_flags_and_a_cpu_without_bf16(
    tiny, tmp_path, monkeypatch
):
    out = tmp_path / "bf16"
    command = ["optimize", str(tiny["bert"]), str(out), "--level", "bf16"]
    cpu_with_bf16(monkeypatch, True)
    result = CliRunner().invoke(cli, [*command, "--no-smooth", "--batched"])
    assert result.exit_code == 2
    assert "--no-smooth, --batched set how an int8 graph is built" in result.output
    cpu_with_bf16(monkeypatch, False)
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "error: level 'bf16' needs bfloat16 compute" in result.output
    assert "-> Use level='exact' or level='int8' on this machine. (command line: --level)" in (
        result.output
    )
    assert not out.exists()


def test_bf16_that_misses_its_tolerance_names_the_first_divergent_layer(
    tiny, tmp_path, monkeypatch
):
    """A tolerance bfloat16 cannot meet: refused, the layer named from hooks on every
    module (autocast has no graph to expose), nothing written."""
    cpu_with_bf16(monkeypatch, True)
    monkeypatch.setitem(
        OPTIMIZE_LEVELS, "bf16", Tolerance(atol=1e-7, min_cosine=0.99999999, name="bf16")
    )
    out = tmp_path / "bf16"
    with pytest.raises(OptimizationMismatchError) as caught:
        optimize(str(tiny["bert"]), out, level="bf16", texts=TEXTS)
    error = caught.value
    assert error.divergent is not None and error.divergent.startswith("encoder.layer.0.")
    assert f"First divergent module: {error.divergent}." in str(error)
    assert "bfloat16's 8-bit mantissa" in error.hint
    assert not out.exists()


# -- loading and running -------------------------------------------------------------------


def test_bf16_bundle_runs_under_autocast_through_the_engine(bf16):
    engine = Engine(load_bundle(bf16), "embed")
    assert engine.backend_name == "torch-autocast (bf16)"
    assert engine.reverified is None  # same machine as the evidence
    texts = load_reference(bf16 / REFERENCE_NAME).texts
    autocast_not_float32(task_vectors(engine.predict(texts)), bf16)


def test_tether_embed_runs_the_bf16_bundle(bf16, tmp_path):
    texts = load_reference(bf16 / REFERENCE_NAME).texts
    autocast_not_float32(embed_with_cli(bf16, texts, tmp_path), bf16)


def test_beam_handler_runs_the_bf16_bundle(bf16):
    texts = load_reference(bf16 / REFERENCE_NAME).texts
    embed_with_beam(bf16, texts, lambda got: autocast_not_float32(got, bf16))


def test_another_cpu_re_verifies_the_bf16_bundle(bf16, tmp_path, caplog):
    bundle = copy_of(bf16, tmp_path)
    edit_evidence(bundle, lambda e: e["machine"]["cpu_features"].append("amx_bf16_gone"))
    with caplog.at_level(logging.WARNING, logger="tether.inference.optimized"):
        engine = Engine(load_bundle(bundle), "embed")
    assert engine.reverified is not None and engine.reverified.passed
    assert "CPU lacks amx_bf16_gone" in caplog.text


def test_another_torch_that_no_longer_passes_is_refused(bf16, tmp_path):
    bundle = copy_of(bf16, tmp_path)

    def change(evidence: dict[str, Any]) -> None:
        evidence["machine"]["runtime_version"] = "0.0.1"
        evidence["tolerance"]["atol"] = 0.0

    edit_evidence(bundle, change)
    with pytest.raises(OptimizationMismatchError, match=r"torch 0.0.1 -> .*max abs diff"):
        Engine(load_bundle(bundle), "embed")


def test_evidence_with_neither_graph_nor_autocast_is_refused(bf16, tmp_path):
    bundle = copy_of(bf16, tmp_path)
    edit_evidence(bundle, lambda e: e.update(build={}))
    with pytest.raises(BundleError, match="neither a graph nor an autocast dtype"):
        Engine(load_bundle(bundle), "embed")


@pytest.mark.slow
def test_minilm_bf16_bundle_passes_on_every_text(minilm_dir, tmp_path, monkeypatch):
    from tether import ModelSpec

    cpu_with_bf16(monkeypatch, True)
    spec = ModelSpec(str(minilm_dir), model_class="AutoModel", max_length=256)
    result = optimize(spec, tmp_path / "minilm-bf16", level="bf16", texts=TEXTS, runtime="torch")
    evidence = result.evidence
    for name in ("probes", "texts", "engine"):
        assert evidence.parity[name]["min_cosine"] >= 0.999
    assert evidence.parity["engine"]["max_abs_diff"] > 1e-4
    engine = Engine(load_bundle(result.path), "embed")
    assert engine.backend_name == "torch-autocast (bf16)"
    texts = load_reference(result.path / REFERENCE_NAME).texts
    autocast_not_float32(task_vectors(engine.predict(texts)), result.path)


def test_bf16_classify_bundle_gives_the_verified_scores(tiny, tmp_path, monkeypatch):
    cpu_with_bf16(monkeypatch, True)
    path = optimize(
        str(tiny["distilbert-cls"]),
        tmp_path / "cls",
        level="bf16",
        task="classify",
        texts=TEXTS,
        runtime="torch",
    ).path
    engine = Engine(load_bundle(path), "classify")
    assert engine.backend_name == "torch-autocast (bf16)"
    reference = load_reference(path / REFERENCE_NAME)
    outcomes = engine.predict(reference.texts)
    assert {o.inference["label"] for o in outcomes} <= set(engine.task.labels)
    got = task_vectors(outcomes)
    assert np.abs(got - reference.optimized).max() <= 1e-6
    assert Engine(load_bundle(path), "embed").backend_name == "pytorch"  # not verified for embed
