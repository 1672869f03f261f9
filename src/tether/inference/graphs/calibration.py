"""Calibration: what the activations feeding a graph's weighted products look like on texts.

Both int8 steps are set from it: smoothing (smooth.py) moves each channel's largest
magnitude into the weights, static quantisation (qdq.py) freezes each activation's range
as its scale. Measured on real tokens only: padding is masked out, so a batch's padding
never widens a range.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tether.errors import require_extra


def weighted_products(graph: Any) -> list[tuple[Any, str, str]]:
    """(node, activation input, weight initializer) of every product with constant weights
    (MatMul, and the input projection of fused Attention)."""
    initializers = {i.name for i in graph.graph.initializer}
    found = []
    for node in graph.graph.node:
        if (
            node.op_type in ("MatMul", "Attention")
            and len(node.input) > 1
            and node.input[1] in initializers
            and node.input[0] not in initializers
        ):
            found.append((node, node.input[0], node.input[1]))
    return found


def activation_bounds(
    graph_path: Path, batches: Iterable[Mapping[str, Any]]
) -> dict[str, tuple[Any, Any]]:
    """Activation tensor -> (per-channel min, per-channel max) over the real (unpadded)
    tokens of ``batches`` (collated task batches), for every product
    :func:`weighted_products` finds."""
    import numpy as np
    import onnx

    from tether.inference.backends import OnnxBackend

    require_extra("onnx", "onnx")
    graph = onnx.load(str(graph_path))
    wanted = sorted({act for _, act, _ in weighted_products(graph)})
    present = {o.name for o in graph.graph.output}
    for name in wanted:
        if name not in present:
            graph.graph.output.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    exposed = graph_path.with_name(graph_path.stem + ".bounds.onnx")
    onnx.save(graph, str(exposed))
    try:
        backend = OnnxBackend(exposed)
        bounds: dict[str, tuple[Any, Any]] = {}
        for batch in batches:
            outputs = backend(batch)
            real = batch["attention_mask"].numpy().astype(bool)
            for name in wanted:
                value = outputs[name].numpy()
                tokens = (
                    value[real]
                    if value.shape[:2] == real.shape
                    else value.reshape(-1, value.shape[-1])
                )
                low, high = tokens.min(axis=0), tokens.max(axis=0)
                if name in bounds:
                    low = np.minimum(bounds[name][0], low)
                    high = np.maximum(bounds[name][1], high)
                bounds[name] = (low, high)
    finally:
        exposed.unlink()
    return bounds
