"""Verifying an optimised model against the original, three ways.

What is verified (a ``Subject``) is an ONNX graph's path, or ``Autocast(dtype)``: the
original module itself run under CPU autocast (the ``bf16`` level).

1. The parity tool (``tether.compare``) on the probe texts and on the user's texts:
   A is the original PyTorch model, B the graph; final outputs elementwise, every
   text's embedding (or logits) by cosine. When B fails, the graph is run again with
   its layer norms exposed, and the report names the first module that parted ways.
2. The engine: every text through the length-sorted token-budget batches users get,
   the original's task outputs against the graph's (``check_vectors``).
3. Batch invariance: a sample of texts run alone against the same texts batched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tether.bundles.optimized import VectorCheck, check_vectors
from tether.inference.backends import AutocastBackend, OnnxBackend
from tether.inference.engine import Engine
from tether.inference.optimized import task_vectors
from tether.models.loading import LoadedModel
from tether.optimization.graph import with_layers
from tether.parity.candidates import Candidate, from_loaded
from tether.parity.compare import ParityReport, compare
from tether.tolerances import BATCH_INVARIANCE_COSINE, Tolerance


@dataclass(frozen=True)
class Autocast:
    """The original model's own module, run under ``torch.autocast("cpu", dtype)``."""

    dtype: str = "bfloat16"


Subject = Path | Autocast


def backend_for(engine: Engine, subject: Subject) -> AutocastBackend | OnnxBackend:
    """The backend that runs ``subject`` for ``engine``'s task."""
    if isinstance(subject, Autocast):
        return AutocastBackend.for_task(engine.task, subject.dtype)
    return OnnxBackend(subject)


def autocast_candidate(loaded: LoadedModel, subject: Autocast, label: str) -> Candidate:
    """A parity side running the original model under autocast. It is the same module as
    side A, so compare's hooks see every layer of both and can name the first that parts."""
    import torch

    base = from_loaded(loaded, label)
    forward = base.forward

    def run(batch: Mapping[str, Any]) -> Any:
        with torch.autocast("cpu", dtype=getattr(torch, subject.dtype)):
            return forward(batch)

    return replace(base, forward=run)


def subject_candidate(loaded: LoadedModel, subject: Subject, label: str) -> Candidate:
    if isinstance(subject, Autocast):
        return autocast_candidate(loaded, subject, label)
    return graph_candidate(subject, label)


def graph_candidate(path: Path, label: str, layers: Mapping[str, str] | None = None) -> Candidate:
    """A parity side that runs the graph at ``path``; with ``layers`` (module name ->
    graph output) it also returns those outputs as named intermediates."""
    backend = OnnxBackend(path)
    wanted = dict(layers or {})
    finals = [n for n in backend.output_names if n not in set(wanted.values())]

    def forward_layers(batch: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        outputs = backend(batch)
        inner = {module: outputs[tensor] for module, tensor in wanted.items()}
        return {k: outputs[k] for k in finals}, inner

    return Candidate(
        label=label,
        kind="onnx",
        forward=lambda batch: forward_layers(batch)[0],
        forward_layers=forward_layers if wanted else None,
    )


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
        side = autocast_candidate(loaded, subject, f"original under {subject.dtype} autocast")
    else:
        debug = workdir / "layers.onnx"
        layers = with_layers(subject, debug)
        side = graph_candidate(debug, "optimised graph (layers exposed)", layers)
    report = compare(from_loaded(loaded), side, texts=list(texts), tolerance=tolerance)
    first = report.first_divergence
    if first is None:  # the cosine alone may fail: take the layer with the lowest one
        worst = min(report.layers or report.modules, key=lambda m: m.cos_min, default=None)
        first = worst if worst is not None and not worst.within(tolerance) else None
    return (first.name if first else None), report


def engine_vectors(
    loaded: LoadedModel, task: str, texts: Sequence[str], subject: Subject | None
) -> Any:
    """(texts, dim) task outputs through the engine: PyTorch, or ``subject``."""
    engine = Engine(loaded, task)
    if subject is not None:
        engine.task.attach(backend_for(engine, subject))
    return task_vectors(engine.predict(list(texts)))


@dataclass
class Invariance:
    """A text alone against the same text inside the engine's batches."""

    texts: int
    min_cosine: float
    passed: bool


def batch_invariance(
    loaded: LoadedModel, task: str, subject: Subject, texts: Sequence[str], batched: Any
) -> Invariance:
    """Run each of ``texts`` alone through ``subject`` and compare with ``batched`` (the
    same texts' outputs from the engine's batches)."""
    import numpy as np

    engine = Engine(loaded, task)
    engine.task.attach(backend_for(engine, subject))
    alone = np.concatenate([task_vectors(engine.predict([t])) for t in texts])
    check: VectorCheck = check_vectors(
        batched, alone, Tolerance(min_cosine=BATCH_INVARIANCE_COSINE)
    )
    return Invariance(len(texts), check.min_cosine, check.passed)
