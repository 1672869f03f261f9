"""Smoothing activation outliers into the weights before int8 (SmoothQuant's rescaling).

Dynamic int8 gives each activation tensor one scale, set by its largest value; a few
channels that run 10-30x larger than the rest (MiniLM's attention-output layer norms and
GELU outputs do) leave the others a handful of levels. For every product ``x @ W`` with
constant weights (MatMul, and the input projection of fused Attention) this module
inserts ``x' = x * (1/s)`` and stores ``W' = diag(s) @ W``, with per input channel

    s_j = max|x_j| ** alpha / max|W_j,:| ** (1 - alpha)

measured on calibration texts. ``x' @ W'`` equals ``x @ W`` in exact arithmetic (float32
rounding aside: the smoothed float32 graph passes the exact level), and both factors are
now easier to quantise. The inserted Mul sits on the product's own input, never on the
tensor itself, so a residual path that also reads ``x`` is untouched (BERT's post-norm
layers feed each layer norm to both the next block and its skip connection).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tether.inference.graphs.calibration import activation_bounds, weighted_products

#: Metadata that names the smoothed products in a graph (for the evidence and reviews).
SMOOTHED_KEY = "tether.smoothed"


def activation_ranges(graph_path: Path, batches: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Activation tensor -> per-channel max |value| over the real (unpadded) tokens of
    ``batches`` (collated task batches), for every product :func:`weighted_products` finds."""
    import numpy as np

    return {
        name: np.maximum(-low, high)
        for name, (low, high) in activation_bounds(graph_path, batches).items()
    }


def smooth(source: Path, target: Path, ranges: Mapping[str, Any], alpha: float) -> int:
    """Write ``source`` smoothed with strength ``alpha`` (0: nothing moves to the weights,
    1: activations become flat) to ``target``; returns how many products were smoothed."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.load(str(source))
    initializers = {i.name: i for i in graph.graph.initializer}
    products = weighted_products(graph)
    uses: dict[str, int] = {}
    for node in graph.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    done = []
    for index, (node, activation, weight_name) in enumerate(products):
        if activation not in ranges or uses[weight_name] > 1:
            continue  # a shared weight would be scaled once per user
        weight = numpy_helper.to_array(initializers[weight_name]).astype(np.float32)
        if weight.ndim != 2 or weight.shape[0] != len(ranges[activation]):
            continue
        act_max = np.maximum(np.asarray(ranges[activation], dtype=np.float64), 1e-5)
        weight_max = np.maximum(np.abs(weight).max(axis=1).astype(np.float64), 1e-5)
        scale = (act_max**alpha / weight_max ** (1 - alpha)).astype(np.float32)
        initializers[weight_name].CopyFrom(
            numpy_helper.from_array(weight * scale[:, None], weight_name)
        )
        inverse = numpy_helper.from_array((1.0 / scale).astype(np.float32), f"{weight_name}.smooth")
        graph.graph.initializer.append(inverse)
        smoothed = f"{activation}.smoothed.{index}"
        mul = helper.make_node(
            "Mul", [activation, inverse.name], [smoothed], name=f"{node.name}.smooth"
        )
        graph.graph.node.insert(list(graph.graph.node).index(node), mul)
        node.input[0] = smoothed
        done.append(node.name)
    helper.set_model_props(graph, {**_props(graph), SMOOTHED_KEY: ",".join(done)})
    onnx.save(graph, str(target))
    return len(done)


def _props(graph: Any) -> dict[str, str]:
    return {p.key: p.value for p in graph.metadata_props}
