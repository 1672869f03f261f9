"""Backends: what runs a task's forward pass.

PyTorch is the default: the task calls the loaded module. An optimised bundle carries
an ONNX graph of the task's forward pass; ``OnnxBackend`` runs it with ONNX Runtime
behind the same call, so tasks keep their tokenisation, batching and pooling. The
runtime is an optional extra (``tether[onnx]``), imported only in ``onnx.py``.
``AutocastBackend`` runs the task's own module under CPU autocast (the ``bf16`` level).
``OpenVinoBackend`` runs the same ONNX graphs with OpenVINO (``tether[openvino]``,
imported only in ``openvino.py``): which runtime is faster depends on the CPU, and
``tether optimize`` measures them.
"""

from __future__ import annotations

from tether.inference.backends.autocast import AutocastBackend
from tether.inference.backends.onnx import OnnxBackend
from tether.inference.backends.openvino import OpenVinoBackend

__all__ = ["AutocastBackend", "OnnxBackend", "OpenVinoBackend"]
