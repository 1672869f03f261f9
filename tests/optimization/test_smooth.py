"""Smoothing activation outliers into weights, and int8 graphs run one text at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import optional_import

optional_import("onnxruntime", "onnx")

import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from optimized_bundles import exported_tiny_bert  # noqa: E402
from tether import Int8Scheme  # noqa: E402
from tether.inference.backends import OnnxBackend  # noqa: E402
from tether.inference.graphs.export import fuse  # noqa: E402
from tether.inference.graphs.int8 import quantize  # noqa: E402
from tether.inference.graphs.smooth import (  # noqa: E402
    SMOOTHED_KEY,
    activation_ranges,
    smooth,
    weighted_products,
)
from tiny_models import CORPUS  # noqa: E402

TEXTS = list(dict.fromkeys(CORPUS))
#: The default scheme with dynamic activation scales: one text per run.
DYNAMIC = Int8Scheme(activations="dynamic")


@pytest.fixture(scope="module")
def graphs(tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """The tiny BERT's fused graph, its batches, and its smoothed copy (alpha 0.8)."""
    work = tmp_path_factory.mktemp("smooth")
    loaded, batches = exported_tiny_bert(tiny["bert"], work, TEXTS)
    fuse(work / "export.onnx", work / "fused.onnx", loaded.model.config)
    ranges = activation_ranges(work / "fused.onnx", batches)
    count = smooth(work / "fused.onnx", work / "smoothed.onnx", ranges, 0.8)
    return work, batches, ranges, count


def _weights(path: Path) -> dict[str, np.ndarray]:
    graph = onnx.load(str(path))
    return {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}


def test_every_product_with_constant_weights_is_smoothed(graphs):
    work, _, ranges, count = graphs
    products = weighted_products(onnx.load(str(work / "fused.onnx")))
    assert count == len(products) > 0
    assert {activation for _, activation, _ in products} == set(ranges)
    smoothed = onnx.load(str(work / "smoothed.onnx"))
    props = {p.key: p.value for p in smoothed.metadata_props}
    assert props[SMOOTHED_KEY].split(",") == [node.name for node, _, _ in products]
    muls = [n for n in smoothed.graph.node if n.name.endswith(".smooth")]
    assert len(muls) == count


def test_smoothing_moves_scale_into_the_weights_row_by_row(graphs):
    """W' = diag(s) W with s_j = max|x_j|^0.8 / max|W_j|^0.2, and the inserted Mul
    divides the activation by the same s."""
    work, _, ranges, _ = graphs
    before, after = _weights(work / "fused.onnx"), _weights(work / "smoothed.onnx")
    _, activation, weight = weighted_products(onnx.load(str(work / "fused.onnx")))[0]
    w = before[weight].astype(np.float64)
    s = np.maximum(ranges[activation], 1e-5) ** 0.8 / np.maximum(np.abs(w).max(1), 1e-5) ** 0.2
    np.testing.assert_allclose(after[weight], w * s[:, None], rtol=1e-5)
    np.testing.assert_allclose(after[f"{weight}.smooth"], 1 / s, rtol=1e-5)
    assert not np.allclose(after[weight], before[weight])


def test_smoothing_is_exact_in_float32(graphs):
    work, batches, _, _ = graphs
    fused, smoothed = OnnxBackend(work / "fused.onnx"), OnnxBackend(work / "smoothed.onnx")
    for batch in batches:
        a, b = fused(batch), smoothed(batch)
        for name in fused.output_names:
            assert (a[name] - b[name]).abs().max().item() <= 1e-5


def test_one_text_per_run_gives_each_text_its_result_alone(graphs):
    """An int8 graph with dynamic activation scales: batched, a text's output depends on
    its neighbours; run one text per run (the dynamic default), it equals the text run
    alone, bit for bit, and padded positions are zeros."""
    work, batches, _, _ = graphs
    batched_scheme = Int8Scheme(activations="dynamic", per_channel=False, one_text_per_run=False)
    quantize(work / "smoothed.onnx", work / "batched.onnx", batched_scheme, None)
    quantize(work / "smoothed.onnx", work / "per-text.onnx", DYNAMIC, None)
    batched, per_text = OnnxBackend(work / "batched.onnx"), OnnxBackend(work / "per-text.onnx")
    assert per_text.one_text_per_run and not batched.one_text_per_run
    assert "one text per run" in repr(per_text)
    batch = max(batches, key=lambda b: int((b["attention_mask"] == 0).sum()))
    mask = batch["attention_mask"]
    assert (mask == 0).any()  # the batch is padded
    name = per_text.output_names[0]
    together = per_text(batch)[name]
    apart = batched(batch)[name]
    differs = False
    for i in range(len(mask)):
        real = mask[i].bool()
        row = {k: v[i : i + 1, real] for k, v in batch.items()}
        assert torch.equal(together[i, real], per_text(row)[name][0])
        assert torch.equal(together[i, ~real], torch.zeros_like(together[i, ~real]))
        differs |= not torch.equal(apart[i, real], batched(row)[name][0])
    assert differs  # without it, batching changes a text's output


def test_texts_of_a_per_text_graph_run_side_by_side_with_the_same_results(graphs):
    """With 2 threads, a one-text-per-run graph runs 2 texts at once on single-thread
    runs (its products are too small to split); every output is the one a single thread
    running the texts in turn gives, in batch order."""
    work, batches, _, _ = graphs
    path = work / "side-by-side.onnx"
    quantize(work / "smoothed.onnx", path, DYNAMIC, None)
    parallel, serial = OnnxBackend(path, threads=2), OnnxBackend(path, threads=1)
    assert parallel._pool is not None and serial._pool is None
    assert parallel.threads == 2 and "threads=2, one text per run" in repr(parallel)
    batched = OnnxBackend(work / "fused.onnx", threads=2)  # float32, batched: no pool
    assert batched._pool is None and not batched.one_text_per_run
    for batch in batches:
        got, expected = parallel(batch), serial(batch)
        for name in parallel.output_names:
            assert torch.equal(got[name], expected[name])
