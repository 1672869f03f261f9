"""Ports to other frameworks compared layer by layer: the Flax Llama in examples/, and a
NumPy function returning a dict of intermediates; real models, real JAX, no mocks."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tether import compare
from tether.cli.main import cli
from tether.parity.candidates import flatten_intermediates, to_torch
from tether.parity.names import normalise, pair_intermediates

ROOT = Path(__file__).resolve().parents[2]

NUMPY_PORT = '''
def blocks(reference, shift=0.0):
    """A 'port' in NumPy: BERT's hidden states, named blocks_<i>, as intermediates."""
    import torch

    def forward(inputs):
        batch = {k: torch.as_tensor(v) for k, v in inputs.items()}
        with torch.inference_mode():
            out = reference(**batch, output_hidden_states=True)
        hidden = [h.numpy().copy() for h in out.hidden_states]
        hidden[2] += shift  # layer 1's output, when shifted
        inter = {f"blocks_{i}": h for i, h in enumerate(hidden[1:])}
        return {"last_hidden_state": hidden[-1], "intermediates": inter}

    return forward


def shifted_blocks(reference):
    return blocks(reference, shift=1e-3)
'''


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository root, so ``examples.llama_flax:port`` imports."""
    pytest.importorskip("flax")
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT))
    return ROOT


def test_flax_llama_port_matches_layer_by_layer_within_float32_rounding(tiny, in_repo):
    args = ["compare", str(tiny["llama"]), "examples.llama_flax:port", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["passed"] and data["first_divergence"] is None
    assert data["kind_b"] == "callable"
    names = [m["name"] for m in data["modules"]]
    assert "layers.0.self_attn.q_proj" in names and "layers.1.mlp" in names and "norm" in names
    assert len(names) >= 24  # every Dense, norm, attention, MLP and layer of both layers
    layers = {m["name"]: m for m in data["layers"]}
    assert layers["embed_tokens"]["level"] == "exact"
    for row in data["modules"]:
        assert row["level"] in ("exact", "rounding"), row
        assert row["ulps"] <= 16, row  # observed: at most 5 ulps
    assert data["only_in_b"] == []


def test_flax_port_with_eps_outside_the_root_is_named_at_the_first_rmsnorm(tiny, in_repo):
    args = ["compare", str(tiny["llama"]), "examples.llama_flax:port_eps_outside"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "First divergence: layers.0.input_layernorm (LlamaRMSNorm in A, " in result.output
    assert "beyond float32 rounding: a real difference" in result.output
    report = compare(str(tiny["llama"]), "examples.llama_flax:port_eps_outside")
    first = report.first_divergence
    assert first.name == "layers.0.input_layernorm" and first.level == "beyond"
    assert first.max_abs > 1e-3 and first.ulps > 1000
    by_name = {m.name: m for m in report.modules}
    assert by_name["embed_tokens"].max_abs == 0  # before the norm: untouched


def test_numpy_port_returning_a_dict_of_intermediates_with_a_yaml_name_map(
    tiny, tmp_path, monkeypatch
):
    (tmp_path / "numpy_port.py").write_text(textwrap.dedent(NUMPY_PORT))
    (tmp_path / "names.yaml").write_text("encoder.layer: blocks\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    same = compare(str(tiny["bert"]), "numpy_port:blocks", mapping=[str(tmp_path / "names.yaml")])
    assert same.passed and [m.name for m in same.modules] == ["encoder.layer.0", "encoder.layer.1"]
    assert all(m.max_abs == 0 for m in same.modules)
    shifted = compare(
        str(tiny["bert"]), "numpy_port:shifted_blocks", mapping={"encoder.layer": "blocks"}
    )
    assert shifted.first_divergence.name == "encoder.layer.1"
    assert shifted.first_divergence.max_abs == pytest.approx(1e-3, rel=1e-3)
    unmapped = compare(str(tiny["bert"]), "numpy_port:blocks")
    assert unmapped.modules == [] and unmapped.only_in_b == ["blocks_0", "blocks_1"]


def test_default_name_map_pairs_flax_paths_with_torch_module_names():
    assert normalise("layers_0/self_attn/q_proj") == "layers.0.self_attn.q_proj"
    torch_names = ["model.embed_tokens", "model.layers.0.mlp", "model.layers.10.mlp", "model.norm"]
    paired = pair_intermediates(
        ["embed_tokens", "layers_0/mlp", "layers_10/mlp", "norm", "lm_head"], torch_names
    )
    assert paired == {
        "embed_tokens": "model.embed_tokens",
        "layers_0/mlp": "model.layers.0.mlp",
        "layers_10/mlp": "model.layers.10.mlp",
        "norm": "model.norm",
    }
    assert pair_intermediates(["h_0"], ["transformer.h.0"], [("transformer.h", "blocks")]) == {
        "h_0": "transformer.h.0"
    }
    assert pair_intermediates(["block_0"], ["layers.0"], [("layers", "block")]) == {
        "block_0": "layers.0"
    }


def test_flax_intermediates_flatten_and_jax_arrays_arrive_without_a_copy():
    jnp = pytest.importorskip("jax.numpy")
    x = jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3)
    tensor = to_torch(x)
    assert tensor.data_ptr() == x.unsafe_buffer_pointer()  # DLPack: shared memory
    tree = {"intermediates": {"layers_0": {"mlp": {"__call__": (x,)}, "__call__": (x + 1,)}}}
    flat = flatten_intermediates(tree)
    assert list(flat) == ["layers_0/mlp", "layers_0"]
    assert torch.equal(flat["layers_0"], torch.arange(1.0, 7.0).reshape(2, 3))
