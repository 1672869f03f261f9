"""Optimised bundles: a faster graph of a model, with the proof that it is still the model.

``optimize(source, out_dir, level=...)`` exports the task's forward pass to ONNX, fuses
it (and, at ``int8``, quantises it), verifies it against the original with the parity
tool and writes a bundle whose manifest carries the evidence. ``load()`` of that bundle
gives the engine the graph (``tether.inference.optimized``).
"""

from __future__ import annotations

from tether.inference.graphs.int8 import Int8Scheme
from tether.optimization.build import LEVELS, OptimizeResult, optimize

__all__ = ["LEVELS", "Int8Scheme", "OptimizeResult", "optimize"]
