"""Export a task's forward pass to ONNX and fuse it with ONNX Runtime's transformer optimizer.

The graph is exactly the module the task calls (the encoder for ``embed``, the model
with its head for ``classify``), with eager attention so that the optimizer recognises
the attention pattern, and named outputs (``last_hidden_state`` or ``logits``). ONNX
names each tensor after the module that made it (``/model/encoder/layer.0/output/
LayerNorm/...``), and the optimizer keeps those names on fused nodes' outputs; that is
how a divergent layer is named (``with_layers``) and how int8 picks what to quantise.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tether.errors import OptimizationError, require_extra

#: model_type -> the ONNX Runtime optimizer's model type (others: no fusion, the session's
#: own graph optimisations only).
FUSION_TYPES = {
    "bert": "bert",
    "roberta": "bert",
    "xlm-roberta": "bert",
    "camembert": "bert",
    "distilbert": "bert",
    "electra": "bert",
    "mpnet": "bert",
}
#: The wrapper's attribute name: every tensor name of the export starts with it.
_ROOT = "model"
_MODULE_OF = re.compile(rf"^/{_ROOT}/(.+)/[^/]+$")


def export_graph(module: Any, sample: Mapping[str, Any], output: str, path: Path) -> Path:
    """Export ``module`` (inputs ``sample``'s keys, int64) to ``path``; its one output
    is ``module(**inputs)[output]``, with dynamic batch (and sequence) axes."""
    import torch
    from torch import nn

    require_extra("onnx", "onnx")
    module = copy.deepcopy(module).eval().float()
    if hasattr(module, "set_attn_implementation"):
        # SDPA exports as a pattern ONNX Runtime's optimizer cannot fuse
        with contextlib.suppress(ValueError, AttributeError):
            module.set_attn_implementation("eager")
    names = list(sample)
    example = tuple(sample[k] for k in names)

    class Graph(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            setattr(self, _ROOT, inner)

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            inner = getattr(self, _ROOT)
            return inner(**dict(zip(names, args, strict=True)), return_dict=True)[output]

    axes: dict[str, dict[int, str]] = {k: {0: "batch", 1: "sequence"} for k in names}
    axes[output] = {0: "batch", 1: "sequence"} if output == "last_hidden_state" else {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                Graph(module),
                example,
                str(path),
                input_names=names,
                output_names=[output],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        except Exception as exc:  # the exporter raises many unrelated types
            raise OptimizationError(
                f"ONNX export of {type(module).__name__} failed: {type(exc).__name__}: {exc}",
                "Run the original model (this architecture does not export with "
                "torch.onnx.export).",
            ) from exc
    return path


def fuse(
    source: Path, target: Path, config: Any, *, packed_attention: bool = True
) -> dict[str, int]:
    """Fuse attention, layer norms and GELU with ONNX Runtime's transformer optimizer;
    returns the count of each fused operator (empty when the architecture has none).

    ``packed_attention=False`` fuses attention into ``MultiHeadAttention``, which takes
    the query, key and value projections as three plain MatMuls, instead of
    ``Attention``, which packs their weights into itself: static int8 quantises those
    MatMuls (12% faster on MiniLM than leaving attention unfused; ``Attention``'s own
    weights have no static int8 form in ONNX Runtime's QDQ rules)."""
    import shutil

    kind = FUSION_TYPES.get(str(getattr(config, "model_type", "")))
    if kind is None:
        shutil.copyfile(source, target)
        return {}
    require_extra("onnxruntime", "onnx")
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    # its modules log fusion and shape notes on loggers named after themselves
    options = FusionOptions(kind)
    options.use_multi_head_attention = not packed_attention
    logging.disable(logging.WARNING)
    try:
        optimized = optimize_model(
            str(source),
            model_type=kind,
            num_heads=int(
                getattr(config, "num_attention_heads", 0) or getattr(config, "n_heads", 0)
            ),
            hidden_size=int(getattr(config, "hidden_size", 0) or getattr(config, "dim", 0)),
            opt_level=0,
            optimization_options=options,
        )
        optimized.save_model_to_file(str(target))
        counts = optimized.get_fused_operator_statistics()
    finally:
        logging.disable(logging.NOTSET)
    return {name: int(n) for name, n in counts.items() if n}


def module_of(tensor: str) -> str | None:
    """The module that made a tensor, from its exported name:
    ``/model/encoder/layer.0/output/LayerNorm/X_output_0`` -> ``encoder.layer.0.output.LayerNorm``.
    """
    match = _MODULE_OF.match(tensor)
    return match.group(1).replace("/", ".") if match else None


def layer_outputs(graph: Any) -> dict[str, str]:
    """Module name -> the tensor holding its output, for each layer norm of the graph
    (the end of every attention and feed-forward block: what the parity tool compares)."""
    found: dict[str, str] = {}
    for node in graph.graph.node:
        for tensor in node.output:
            module = module_of(tensor)
            if module and module.endswith("LayerNorm"):
                found.setdefault(module, tensor)
    return found


def with_layers(source: Path, target: Path) -> dict[str, str]:
    """Copy the graph at ``source`` to ``target`` with every layer norm's output exposed as
    a graph output named after its module; returns module name -> output name."""
    import onnx

    graph = onnx.load(str(source))
    exposed = layer_outputs(graph)
    outputs = {o.name for o in graph.graph.output}
    for tensor in exposed.values():
        if tensor not in outputs:
            graph.graph.output.append(
                onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None)
            )
    onnx.save(graph, str(target))
    return exposed
