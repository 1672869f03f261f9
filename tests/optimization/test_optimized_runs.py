"""An optimised bundle through `tether optimize`, `tether embed` and a Beam handler: the
outputs are the ones its verification recorded, not the original model's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import optional_import

optional_import("onnxruntime", "onnx")

from optimized_bundles import embed_with_beam, embed_with_cli  # noqa: E402
from tether.bundles.optimized import REFERENCE_NAME, load_reference  # noqa: E402
from tether.cli.main import cli  # noqa: E402
from tether.models.manifest import read_manifest  # noqa: E402
from tiny_models import CORPUS  # noqa: E402


@pytest.fixture(scope="module")
def int8_bundle(tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built through the command line, from the user's texts in a file."""
    root = tmp_path_factory.mktemp("cli-optimize")
    texts = root / "texts.txt"
    texts.write_text("\n".join(dict.fromkeys(CORPUS)) + "\n")
    out = root / "bert-int8"
    result = CliRunner().invoke(
        cli, ["optimize", str(tiny["bert"]), str(out), "--level", "int8", "-i", str(texts)]
    )
    assert result.exit_code == 0, result.output
    assert "optimised embed bundle (int8) written to" in result.output
    assert "parity on 8 texts" in result.output
    assert "static activation scales from" in result.output  # batched, not one text per run
    return out


def graph_not_weights(got: np.ndarray, reference) -> None:
    """``got`` matches the graph's recorded outputs, and differs from the original's."""
    assert np.abs(got - reference.optimized).max() <= 1e-5
    assert np.abs(got - reference.expected).max() > 1e-4  # int8: not the PyTorch weights


def test_tether_embed_runs_the_verified_graph(int8_bundle, tmp_path):
    reference = load_reference(int8_bundle / REFERENCE_NAME)
    graph_not_weights(embed_with_cli(int8_bundle, reference.texts, tmp_path), reference)


def test_beam_handler_runs_the_verified_graph(int8_bundle):
    reference = load_reference(int8_bundle / REFERENCE_NAME)
    embed_with_beam(int8_bundle, reference.texts, lambda got: graph_not_weights(got, reference))


def test_optimize_json_prints_the_evidence(tiny, tmp_path):
    out = tmp_path / "bert-exact"
    result = CliRunner().invoke(cli, ["optimize", str(tiny["bert"]), str(out), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["level"] == "exact"
    assert printed == {"bundle": str(out), **read_manifest(out).optimized}


def test_refused_optimisation_exits_non_zero_and_names_the_layer(tiny, tmp_path):
    """int8 options at the exact level: the graph is quantised per tensor and judged by
    the exact tolerance, which it fails; the command names the layer and writes nothing."""
    out = tmp_path / "broken"
    result = CliRunner().invoke(
        cli,
        [
            "optimize",
            str(tiny["bert"]),
            str(out),
            "--per-tensor",
            "--no-sweep",
            "--no-smooth",
            "--activations",
            "dynamic",
            "--batched",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "error: The exact optimisation does not pass" in result.output
    assert "First divergent module: encoder.layer.0.attention.output.LayerNorm" in result.output
    assert not out.exists()


def test_batched_without_dynamic_activations_is_a_usage_error(tiny, tmp_path):
    result = CliRunner().invoke(
        cli, ["optimize", str(tiny["bert"]), str(tmp_path / "x"), "--level", "int8", "--batched"]
    )
    assert result.exit_code == 2
    assert "Add --activations dynamic" in result.output
