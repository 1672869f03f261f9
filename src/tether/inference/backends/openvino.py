"""``OpenVinoBackend``: an ONNX graph run by OpenVINO's CPU plugin behind a task's forward call.

OpenVINO reads the same ONNX file ONNX Runtime runs (no conversion step, nothing else
stored), fuses it with its own passes and picks kernels for the CPU it finds: AMX and
AVX-512 BF16 tiles for bfloat16, VNNI for the int8 products of a QuantizeLinear /
DequantizeLinear graph. Which of the two runtimes is faster depends on the machine, so
``tether optimize`` measures both and records the one it chose in the evidence; this
class only runs a graph.

``precision`` is OpenVINO's ``INFERENCE_PRECISION_HINT``: ``f32`` keeps float32
arithmetic (its default on a CPU with bfloat16 units is bf16, which would silently
change an ``exact`` graph's numbers), ``bf16`` runs the float32 graph's products in
bfloat16 (the ``bf16`` level), or, in a static int8 graph, everything around the int8
products (attention, GELU, layer norms): on a CPU without bfloat16 units OpenVINO runs
float32 instead, which ``effective_precision`` reports. The runtime is an optional
extra (``tether[openvino]``), imported only here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tether.errors import TaskError, require_extra
from tether.inference.backends.onnx import graph_feed

#: The inference precisions a graph may be run with (OpenVINO's names).
PRECISIONS = ("f32", "bf16")


class OpenVinoBackend:
    """One OpenVINO CPU compiled model over an ONNX file, one request at a time.

    ``threads``: OpenVINO's ``INFERENCE_NUM_THREADS``; by default the number torch uses
    in this process, so one setting governs every backend. The latency hint keeps one
    stream: one batch uses every thread, as ONNX Runtime's session does.
    """

    name = "openvino"

    def __init__(
        self,
        path: str | Path,
        *,
        precision: str = "f32",
        threads: int | None = None,
        label: str | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        ov: Any = require_extra("openvino", "openvino")
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        self.path = Path(path)
        self.precision = precision
        self.threads = max(int(threads), 1)
        self.label = label or self.name
        config = {
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": precision,
            # OpenVINO pins its threads to cores by default, the same cores in every
            # process: two single-thread workers (Beam's processes) then share one core
            # (measured: 2 x 1 thread at half the rate of 1 x 2). The OS places them.
            "ENABLE_CPU_PINNING": False,
        }
        try:
            core = ov.Core()
            self.compiled = core.compile_model(core.read_model(str(self.path)), "CPU", config)
        except Exception as exc:  # OpenVINO raises its own untyped errors
            raise TaskError(
                f"OpenVINO could not compile {str(self.path)!r}: {type(exc).__name__}: {exc}",
                "Re-create the optimised bundle with `tether optimize`.",
            ) from exc
        #: what OpenVINO compiled: ``bf16`` asked of a CPU without bfloat16 gives ``f32``
        self.effective_precision = str(
            self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        )
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        self.output_names = [port.get_any_name() for port in self.compiled.outputs]
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()  # one request: calls from several threads take turns

    def __call__(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Run one batch: torch int64 tensors in, name -> float32 torch tensor out."""
        import numpy as np
        import torch

        feed = graph_feed(self.input_names, inputs)
        with self._lock:
            result = self._request.infer(feed)
            # the request reuses its output buffers on the next call: copy them out
            values = [np.array(result[port], dtype=np.float32) for port in self.compiled.outputs]
        return {
            name: torch.from_numpy(value)
            for name, value in zip(self.output_names, values, strict=True)
        }

    def __repr__(self) -> str:
        return (
            f"OpenVinoBackend({str(self.path)!r}, precision={self.precision}, "
            f"threads={self.threads})"
        )
