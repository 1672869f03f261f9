"""Static int8: activation scales calibrated once and frozen in the graph as QDQ pairs.

Dynamic int8 (int8.py's ``quantize`` with ``activations="dynamic"``) picks each
activation's scale from the tensor it sees, so a padded batch mixes texts and the graph
must run one text at a time. Here every product ``x @ W`` with constant weights gets

    x -> QuantizeLinear -> DequantizeLinear -> MatMul <- DequantizeLinear <- W (int8)

with the activation's scale and zero point fixed from the range ``x`` took on calibration texts
(``activation_bounds``: min and max over real tokens, padding excluded). ONNX Runtime
fuses each pattern into one integer product (uint8 activations x int8 weights, what VNNI
and AMX multiply) with float32 output. A token's numbers then depend only on its own
values and the frozen scales, never on its batch: the graph runs whole padded batches.

Values outside the calibrated range saturate, which is why calibration uses the user's
own texts and the level is checked on texts the calibration never saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tether.errors import require_extra

#: Graph metadata: how many products carry frozen activation scales.
STATIC_KEY = "tether.int8.static"


def activation_scale(low: float, high: float) -> tuple[float, int]:
    """(scale, uint8 zero point) covering [low, high] and 0 (so padding zeros and ReLU
    zeros stay exact)."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    scale = (high - low) / 255.0 or 1.0
    zero = int(min(max(round(-low / scale), 0), 255))
    return scale, zero


def quantize_static(
    source: Path,
    target: Path,
    bounds: Mapping[str, tuple[Any, Any]],
    nodes: list[str] | None,
    *,
    per_channel: bool = True,
    reduce_range: bool = False,
) -> int:
    """Write ``source`` with the MatMul products named in ``nodes`` (None: all) quantised
    statically to ``target``: int8 weights (one scale per output column with
    ``per_channel``; 7-bit with ``reduce_range``, for CPUs without VNNI whose 16-bit
    intermediate sums could saturate) and uint8 activations with the frozen scale of
    ``bounds``. Returns how many products were quantised; a product whose activation has
    no bounds stays float32."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    require_extra("onnx", "onnx")
    graph = onnx.load(str(source))
    initializers = {i.name: i for i in graph.graph.initializer}
    chosen = None if nodes is None else set(nodes)
    limit = 63 if reduce_range else 127
    rewritten: list[Any] = []
    done = 0
    for node in list(graph.graph.node):
        if (
            node.op_type == "MatMul"
            and len(node.input) == 2
            and node.input[1] in initializers
            and node.input[0] in bounds
            and (chosen is None or node.name in chosen)
        ):
            weight = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float32)
            if weight.ndim == 2:
                added, constants = _qdq(
                    node, weight, bounds[node.input[0]], done, per_channel, limit
                )
                rewritten += added
                graph.graph.initializer.extend(constants)
                done += 1
        rewritten.append(node)
    del graph.graph.node[:]
    graph.graph.node.extend(rewritten)
    used = {name for node in graph.graph.node for name in node.input}
    kept = [i for i in graph.graph.initializer if i.name in used]  # float weights replaced
    del graph.graph.initializer[:]
    graph.graph.initializer.extend(kept)
    props = {p.key: p.value for p in graph.metadata_props}
    helper.set_model_props(graph, {**props, STATIC_KEY: str(done)})
    onnx.save(graph, str(target))
    return done


def _qdq(
    node: Any, weight: Any, bound: tuple[Any, Any], index: int, per_channel: bool, limit: int
) -> tuple[list[Any], list[Any]]:
    """(the Q/DQ nodes in front of ``node``, whose inputs are rewired to them; their
    constants)."""
    import numpy as np
    from onnx import helper, numpy_helper

    activation = node.input[0]
    scale, zero = activation_scale(np.min(bound[0]), np.max(bound[1]))
    top = np.abs(weight).max(axis=0) if per_channel else np.array(np.abs(weight).max())
    w_scale = (np.maximum(top, 1e-12) / limit).astype(np.float32)
    w_int = np.clip(np.round(weight / w_scale), -limit, limit).astype(np.int8)
    key = f"qdq.{index}"
    axis: dict[str, Any] = {"axis": 1} if per_channel else {}
    constants = [
        numpy_helper.from_array(np.array(scale, np.float32), f"{key}.x_scale"),
        numpy_helper.from_array(np.array(zero, np.uint8), f"{key}.x_zero"),
        numpy_helper.from_array(w_int, f"{key}.w"),
        numpy_helper.from_array(w_scale, f"{key}.w_scale"),
        numpy_helper.from_array(np.zeros(w_scale.shape, np.int8), f"{key}.w_zero"),
    ]
    quantized = [
        helper.make_node(
            "QuantizeLinear",
            [activation, f"{key}.x_scale", f"{key}.x_zero"],
            [f"{key}.x_q"],
            name=f"{node.name}.quantize",
        ),
        helper.make_node(
            "DequantizeLinear",
            [f"{key}.x_q", f"{key}.x_scale", f"{key}.x_zero"],
            [f"{key}.x_dq"],
            name=f"{node.name}.dequantize",
        ),
        helper.make_node(
            "DequantizeLinear",
            [f"{key}.w", f"{key}.w_scale", f"{key}.w_zero"],
            [f"{key}.w_dq"],
            name=f"{node.name}.weight",
            **axis,
        ),
    ]
    node.input[0], node.input[1] = f"{key}.x_dq", f"{key}.w_dq"
    return quantized, constants
