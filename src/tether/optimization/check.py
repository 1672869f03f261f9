"""Verifying an optimised model against the original, three ways.

What is verified (a ``Subject``) is an ONNX graph's path (ONNX Runtime), the same run by
OpenVINO (``OpenVinoGraph``), or ``Autocast(dtype)``: the original module itself run
under CPU autocast (the ``bf16`` level).

1. The parity tool (``tether.compare``) on the probe texts and on the user's texts:
   A is the original PyTorch model, B the graph; final outputs elementwise, every
   text's embedding (or logits) by cosine. When B fails, the graph is run again with
   its layer norms exposed, and the report names the first module that parted ways.
2. The engine: every text through the length-sorted token-budget batches users get,
   the original's task outputs against the graph's (``check_vectors``).
3. Batch invariance: a sample of texts run alone against the same texts batched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.bundles.optimized import check_vectors
from tether.inference.engine import Engine
from tether.inference.graphs.export import with_layers
from tether.inference.graphs.subjects import (
    Autocast,
    OpenVinoGraph,
    Subject,
    backend_for,
    graph_of,
)
from tether.inference.optimized import task_vectors
from tether.models.loading import LoadedModel
from tether.parity.candidates import (
    autocast_candidate,
    from_loaded,
    graph_candidate,
    subject_candidate,
)
from tether.parity.compare import ParityReport, compare
from tether.tolerances import PRESETS, Tolerance


def parity(
    loaded: LoadedModel, subject: Subject, texts: Sequence[str], tolerance: Tolerance, label: str
) -> ParityReport:
    """``tether.compare`` of the original model (A) and the subject (B) on ``texts``."""
    return compare(
        from_loaded(loaded),
        subject_candidate(loaded, subject, label),
        texts=list(texts),
        tolerance=tolerance,
        layers=False,
    )


def divergent_module(
    loaded: LoadedModel, subject: Subject, texts: Sequence[str], tolerance: Tolerance, workdir: Path
) -> tuple[str | None, ParityReport]:
    """The first module (in the original's execution order) whose output is outside
    ``tolerance``, from a layer-by-layer comparison (a graph with its layer norms
    exposed, or every hooked module under autocast); None when every compared layer is
    within it."""
    if isinstance(subject, Autocast):
        side = autocast_candidate(loaded, subject.dtype, f"original under {subject.dtype} autocast")
    else:
        debug = workdir / "layers.onnx"
        graph = graph_of(subject)
        assert graph is not None
        layers = with_layers(graph, debug)
        exposed = (
            OpenVinoGraph(debug, subject.precision) if isinstance(subject, OpenVinoGraph) else debug
        )
        side = graph_candidate(exposed, "optimised graph (layers exposed)", layers)
    report = compare(from_loaded(loaded), side, texts=list(texts), tolerance=tolerance)
    first = report.first_divergence
    if first is None:  # the cosine alone may fail: take the layer with the lowest one
        worst = min(report.layers or report.modules, key=lambda m: m.cos_min, default=None)
        first = worst if worst is not None and not worst.passed else None
    return (first.name if first else None), report


@dataclass
class Invariance:
    """A text alone against the same text inside the engine's batches."""

    texts: int
    min_cosine: float
    failures: list[str]
    identical: int = 0  # texts whose output alone equals the batched one bit for bit

    @property
    def passed(self) -> bool:
        return not self.failures


def batch_invariance(
    loaded: LoadedModel, task: str, subject: Subject, texts: Sequence[str], batched: Any
) -> Invariance:
    """Run each of ``texts`` alone through ``subject`` and compare with ``batched`` (the
    same texts' outputs from the engine's batches)."""
    import numpy as np

    engine = Engine(loaded, task)
    engine.task.attach(backend_for(engine, subject))
    alone = np.concatenate([task_vectors(engine.predict([t])) for t in texts])
    check = check_vectors(batched, alone, PRESETS["batch-invariance"])
    identical = int(np.all(np.asarray(batched) == alone, axis=1).sum())
    return Invariance(len(texts), check.min_cosine, check.failures, identical)
