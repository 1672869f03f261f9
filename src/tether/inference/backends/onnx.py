"""``OnnxBackend``: an ONNX graph run by ONNX Runtime behind a task's forward call.

It takes the batch a task collates (``input_ids``, ``attention_mask``, maybe
``token_type_ids`` as int64 torch tensors) and returns the graph's outputs by name as
float32 torch tensors that share memory with ONNX Runtime's arrays (no copy).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tether.errors import TaskError, require_extra

#: Graph metadata key: "text" when the graph must run one text at a time, unpadded.
ROWS_KEY = "tether.rows"


class OnnxBackend:
    """One ONNX Runtime CPU session over an ONNX file.

    ``threads`` is the session's intra-op thread count; by default the number torch
    uses in this process (``torch.get_num_threads()``), so one setting governs both
    backends (set it per process when running several).

    A graph whose metadata says ``tether.rows = text`` (int8 graphs: dynamic activation
    scales are computed over a whole input, so in a padded batch each text's result would
    depend on the others and on the padding) is run one text at a time, each cut to its
    own length; per-token outputs are padded back with zeros and stacked, so callers see
    one batch. A text's output is then the same alone or in any batch. Such a graph's
    products are small (one text's tokens), and ``threads`` threads inside one run would
    mostly wait; so its session runs on one thread, and ``threads`` texts run at once
    (ONNX Runtime releases the GIL; each text's result is the same whichever thread runs
    it).
    """

    name = "onnxruntime"

    def __init__(
        self, path: str | Path, *, threads: int | None = None, label: str | None = None
    ) -> None:
        """``label``: how an engine names this backend (default ``name``), e.g. the
        fast path's ``"onnxruntime (exact, cached)"``."""
        ort: Any = require_extra("onnxruntime", "onnx")
        self.label = label or self.name
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        self.path = Path(path)
        self.threads = max(int(threads), 1)
        self.session = self._open(ort, self.threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.one_text_per_run = metadata.get(ROWS_KEY) == "text"
        self._pool: ThreadPoolExecutor | None = None
        if self.one_text_per_run and self.threads > 1:
            self.session = self._open(ort, 1)
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="tether-onnx")

    def _open(self, ort: Any, threads: int) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            return ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise TaskError(
                f"ONNX Runtime could not open {str(self.path)!r}: {type(exc).__name__}: {exc}",
                "Re-create the optimised bundle with `tether optimize`.",
            ) from exc

    def __call__(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Run one batch: torch int64 tensors in, name -> float32 torch tensor out."""
        import torch

        mask = inputs.get("attention_mask")
        if not self.one_text_per_run or mask is None:
            return self._run(inputs)
        reals = []
        for i in range(len(mask)):
            real = mask[i].bool()
            if not bool(real.any()):
                real = torch.zeros_like(real)
                real[0] = True
            reals.append(real)
        feeds = [{k: v[i : i + 1, real] for k, v in inputs.items()} for i, real in enumerate(reals)]
        runs = self._pool.map(self._run, feeds) if self._pool else map(self._run, feeds)
        rows = list(zip(reals, runs, strict=True))
        joined: dict[str, Any] = {}
        for name in self.output_names:
            parts = []
            for real, row in rows:
                part = row[name]
                if part.dim() >= 3:  # (1, tokens, ...): back to the batch's positions
                    full = part.new_zeros((1, len(real), *part.shape[2:]))
                    full[:, real] = part
                    part = full
                parts.append(part)
            joined[name] = torch.cat(parts)
        return joined

    def _run(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        import numpy as np
        import torch

        values = self.session.run(self.output_names, graph_feed(self.input_names, inputs))
        return {
            name: torch.from_numpy(np.asarray(value, dtype=np.float32))
            for name, value in zip(self.output_names, values, strict=True)
        }

    def __repr__(self) -> str:
        rows = ", one text per run" if self.one_text_per_run else ""
        return f"OnnxBackend({str(self.path)!r}, threads={self.threads}{rows})"


def graph_feed(input_names: list[str], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """A graph's inputs by name as contiguous int64 arrays, from a task's torch batch
    (every runtime that runs tether's graphs feeds them this way). A missing
    ``token_type_ids`` is all zeros, what the exported model assumed; any other missing
    input is an error."""
    import numpy as np
    import torch

    feed: dict[str, Any] = {}
    for name in input_names:
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
    return feed
