"""``OnnxBackend``: an ONNX graph run by ONNX Runtime behind a task's forward call.

It takes the batch a task collates (``input_ids``, ``attention_mask``, maybe
``token_type_ids`` as int64 torch tensors) and returns the graph's outputs by name as
float32 torch tensors that share memory with ONNX Runtime's arrays (no copy).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tether.errors import TaskError, require_extra


class OnnxBackend:
    """One ONNX Runtime CPU session over an ONNX file.

    ``threads`` is the session's intra-op thread count; by default the number torch
    uses in this process (``torch.get_num_threads()``), so one setting governs both
    backends (set it per process when running several).
    """

    name = "onnxruntime"

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        ort: Any = require_extra("onnxruntime", "onnx")
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(int(threads), 1)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.path = Path(path)
        self.threads = options.intra_op_num_threads
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise TaskError(
                f"ONNX Runtime could not open {str(self.path)!r}: {type(exc).__name__}: {exc}",
                "Re-create the optimised bundle with `tether optimize`.",
            ) from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Run one batch: torch int64 tensors in, name -> float32 torch tensor out."""
        import numpy as np
        import torch

        feed: dict[str, Any] = {}
        for name in self.input_names:
            value = inputs.get(name)
            if value is None:
                if name != "token_type_ids":
                    raise TaskError(
                        f"The optimised graph needs input {name!r}, which the task does not "
                        f"give (it gives {', '.join(inputs)}).",
                        "Re-create the optimised bundle with `tether optimize`.",
                    )
                value = torch.zeros_like(inputs["input_ids"])
            feed[name] = np.ascontiguousarray(value.cpu().numpy(), dtype=np.int64)
        values = self.session.run(self.output_names, feed)
        return {
            name: torch.from_numpy(np.asarray(value, dtype=np.float32))
            for name, value in zip(self.output_names, values, strict=True)
        }

    def __repr__(self) -> str:
        return f"OnnxBackend({str(self.path)!r}, threads={self.threads})"
