"""``AutocastBackend``: the task's own PyTorch module, run under CPU autocast.

The ``bf16`` optimisation level needs no other runtime: on a CPU with bfloat16 dot
products (avx512_bf16, AMX) PyTorch's oneDNN kernels run matrix products in bfloat16
about twice as fast as in float32, while autocast keeps the reductions that lose most in
bfloat16 (softmax, layer norm, sums) in float32. The weights stay the bundle's float32
weights; only the arithmetic changes, and ``tether optimize`` verified what that costs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.bundles.optimized import AUTOCAST_DTYPES


class AutocastBackend:
    """Runs ``module(**inputs)`` under ``torch.autocast("cpu", dtype)`` and returns
    ``{output: float32 tensor}``, the call an ONNX graph of the same module answers."""

    name = "torch-autocast"

    def __init__(self, module: Any, output: str, dtype: str = "bfloat16") -> None:
        if dtype not in AUTOCAST_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(AUTOCAST_DTYPES)}, got {dtype!r}")
        self.module = module
        self.output = output
        self.dtype = dtype

    @classmethod
    def for_task(cls, task: Any, dtype: str) -> AutocastBackend:
        """The backend for a task's forward pass: its ``graph_module`` and ``graph_output``."""
        return cls(task.graph_module, str(task.graph_output), dtype)

    def __call__(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        import torch

        with torch.inference_mode(), torch.autocast("cpu", dtype=getattr(torch, self.dtype)):
            result = self.module(**inputs)
        value = result[0] if isinstance(result, tuple) else getattr(result, self.output)
        return {self.output: value.float()}

    def __repr__(self) -> str:
        return f"AutocastBackend({type(self.module).__name__}, {self.output!r}, {self.dtype})"
