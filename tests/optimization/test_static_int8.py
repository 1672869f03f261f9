"""Static int8 (tether.inference.graphs.qdq): frozen activation scales as QDQ pairs, so a
graph runs whole padded batches and a text's output never depends on its batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import optional_import

optional_import("onnxruntime", "onnx")

import onnx  # noqa: E402

from optimized_bundles import exported_tiny_bert  # noqa: E402
from tether.inference.backends import OnnxBackend  # noqa: E402
from tether.inference.graphs.calibration import activation_bounds, weighted_products  # noqa: E402
from tether.inference.graphs.export import fuse  # noqa: E402
from tether.inference.graphs.qdq import STATIC_KEY, activation_scale, quantize_static  # noqa: E402
from tiny_models import CORPUS  # noqa: E402

TEXTS = list(dict.fromkeys(CORPUS))


@pytest.fixture(scope="module")
def static(tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """The tiny BERT fused with MultiHeadAttention (q, k, v as MatMuls), calibrated on
    its batches and quantised statically; with the batches and the bounds."""
    work = tmp_path_factory.mktemp("static")
    loaded, batches = exported_tiny_bert(tiny["bert"], work, TEXTS)
    fusions = fuse(
        work / "export.onnx", work / "fused.onnx", loaded.model.config, packed_attention=False
    )
    bounds = activation_bounds(work / "fused.onnx", batches)
    count = quantize_static(work / "fused.onnx", work / "static.onnx", bounds, None)
    return work, batches, bounds, count, fusions


def test_every_matmul_with_constant_weights_gets_frozen_scales(static):
    work, _, bounds, count, fusions = static
    assert not fusions.get("Attention") and fusions["MultiHeadAttention"] == 2  # per layer
    fused = onnx.load(str(work / "fused.onnx"))
    products = [n for n, _, _ in weighted_products(fused) if n.op_type == "MatMul"]
    assert count == len(products) == 6 * len(bounds) // 4 > 0  # q, k, v, out, in, out / layer
    graph = onnx.load(str(work / "static.onnx"))
    props = {p.key: p.value for p in graph.metadata_props}
    assert props[STATIC_KEY] == str(count)
    ops = [n.op_type for n in graph.graph.node]
    assert ops.count("QuantizeLinear") == count and ops.count("DequantizeLinear") == 2 * count
    int8_weights = [i for i in graph.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert len([w for w in int8_weights if w.name.endswith(".w")]) == count
    float_weights = {n.input[1] for n in products}
    assert not float_weights & {i.name for i in graph.graph.initializer}  # replaced, not kept


def test_bounds_are_taken_over_real_tokens_only(static):
    """Padding positions are masked out of the calibration: the bounds of a padded batch
    equal those of its texts run one by one, unpadded."""
    work, batches, _, _, _ = static
    batch = max(batches, key=lambda b: int((b["attention_mask"] == 0).sum()))
    mask = batch["attention_mask"]
    assert (mask == 0).any()
    rows = [{k: v[i : i + 1, mask[i].bool()] for k, v in batch.items()} for i in range(len(mask))]
    padded, alone = (
        activation_bounds(work / "fused.onnx", [batch]),
        activation_bounds(work / "fused.onnx", rows),
    )
    assert padded.keys() == alone.keys()
    for name in padded:
        np.testing.assert_allclose(padded[name][0], alone[name][0], atol=1e-5)
        np.testing.assert_allclose(padded[name][1], alone[name][1], atol=1e-5)


@pytest.mark.parametrize(("low", "high"), [(-3.0, 5.0), (0.5, 2.0), (-4.0, -1.0), (0.0, 0.0)])
def test_activation_scale_covers_the_range_and_keeps_zero_exact(low, high):
    scale, zero = activation_scale(low, high)
    assert 0 <= zero <= 255
    lowest, highest = (0 - zero) * scale, (255 - zero) * scale
    assert lowest <= min(low, 0.0) + scale / 2 and highest >= max(high, 0.0) - scale / 2
    assert round(0.0 / scale) + zero == zero  # 0 quantises to the zero point exactly


def test_a_text_gives_the_same_output_alone_and_in_any_batch_bit_for_bit(static):
    """Frozen scales: each row of a padded batch equals the text run alone, unpadded, and
    the same texts regrouped into another batch give the same rows, bit for bit."""
    work, batches, _, _, _ = static
    backend = OnnxBackend(work / "static.onnx")
    assert not backend.one_text_per_run  # runs whole batches
    name = backend.output_names[0]
    for batch in batches:
        mask = batch["attention_mask"]
        together = backend(batch)[name]
        for i in range(len(mask)):
            real = mask[i].bool()
            row = {k: v[i : i + 1, real] for k, v in batch.items()}
            assert torch.equal(together[i, real], backend(row)[name][0])
    first, second = batches[0], batches[1]
    width = max(first["input_ids"].shape[1], second["input_ids"].shape[1])

    def pad(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, width - t.shape[1]))

    mixed = {k: torch.cat([pad(first[k][:2]), pad(second[k][:2])]) for k in first}
    got = backend(mixed)[name]
    before = backend(first)[name]
    real = first["attention_mask"][0].bool()
    assert torch.equal(got[0, : len(real)][real], before[0, real])


def test_the_static_graph_is_int8_not_float32(static):
    work, batches, _, _, _ = static
    static_graph, fused = OnnxBackend(work / "static.onnx"), OnnxBackend(work / "fused.onnx")
    name = fused.output_names[0]
    diff = max((static_graph(b)[name] - fused(b)[name]).abs().max().item() for b in batches)
    assert diff > 1e-4
