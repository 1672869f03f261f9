"""``build_subject``: the candidate an optimisation level makes of a model, and how to run it.

A *subject* is what replaces the original's forward pass: an ONNX graph's path, or
``Autocast(dtype)``, the original module itself under ``torch.autocast`` (the ``bf16``
level). Steps per level:

* ``exact``: export the task's module to ONNX, fuse it (ONNX Runtime's transformer
  optimizer);
* ``bf16``: no graph, the original module under bfloat16 autocast;
* ``int8``: the fused graph, activation outliers smoothed into the weights (calibrated on
  the texts), then quantised with a per-module sensitivity sweep on those texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.bundles.optimized import check_vectors
from tether.bundles.probes import PROBE_TEXTS
from tether.errors import OptimizationError, SpecError
from tether.inference.backends import AutocastBackend, OnnxBackend
from tether.inference.engine import Engine
from tether.inference.graphs.export import export_graph, fuse
from tether.inference.graphs.int8 import Int8Choice, Int8Scheme, choose
from tether.inference.graphs.smooth import activation_ranges, smooth
from tether.inference.optimized import task_vectors
from tether.models.loading import LoadedModel
from tether.tolerances import OPTIMIZE_LEVELS, Tolerance

#: The levels a subject can be built for, in order of how much they change numbers.
LEVELS = tuple(OPTIMIZE_LEVELS)
#: Texts the int8 sensitivity sweep measures each candidate on (probes first).
SWEEP_TEXTS = 256
#: Rows per batch when measuring activation ranges for smoothing.
CALIBRATION_ROWS = 16


@dataclass(frozen=True)
class Autocast:
    """The original model's own module, run under ``torch.autocast("cpu", dtype)``."""

    dtype: str = "bfloat16"


Subject = Path | Autocast


@dataclass
class Built:
    """A subject and what went into it."""

    subject: Subject
    build: dict[str, Any]  # the evidence's build section: fusions, opset, int8 choice
    texts: list[str]  # the probes, then the user's texts (deduplicated): what it was built on
    expected: Any  # (texts, dim) float32: the original's task outputs on ``texts``


def backend_for(engine: Engine, subject: Subject) -> AutocastBackend | OnnxBackend:
    """The backend that runs ``subject`` for ``engine``'s task."""
    if isinstance(subject, Autocast):
        return AutocastBackend.for_task(engine.task, subject.dtype)
    return OnnxBackend(subject)


def engine_vectors(
    loaded: LoadedModel, task: str, texts: Sequence[str], subject: Subject | None
) -> Any:
    """(texts, dim) task outputs through the engine: PyTorch, or ``subject``."""
    engine = Engine(loaded, task)
    if subject is not None:
        engine.task.attach(backend_for(engine, subject))
    return task_vectors(engine.predict(list(texts)))


def build_texts(texts: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(the user's texts without blanks and repeats, the probes followed by them)."""
    user = list(dict.fromkeys(t for t in texts or () if t.strip()))
    return user, list(dict.fromkeys(list(PROBE_TEXTS) + user))


def build_subject(
    loaded: LoadedModel,
    task: str,
    level: str,
    texts: Sequence[str] | None,
    workdir: Path,
    *,
    int8: Int8Scheme | None = None,
) -> Built:
    """Build ``level``'s subject of ``loaded`` for ``task`` in ``workdir`` (graphs are
    files there), calibrated on the probes and ``texts``.

    ``int8``: how to quantise (default ``Int8Scheme()`` at level ``int8``); given with
    ``exact``, the fused graph is quantised all the same.
    """
    if level not in OPTIMIZE_LEVELS:
        raise SpecError(
            f"Unknown optimisation level {level!r}.", f"Use level= one of {', '.join(LEVELS)}."
        )
    if level == "bf16" and int8 is not None:
        raise SpecError(
            "int8= quantises an ONNX graph, and level 'bf16' runs no graph.",
            "Drop int8=, or use level='int8'.",
        )
    torch_engine = Engine(loaded, task)
    module = torch_engine.task.graph_module
    output = torch_engine.task.graph_output
    if module is None or output is None:
        raise OptimizationError(
            f"The {task!r} task of {loaded.model_id!r} runs a path an optimised backend does "
            "not cover (a sentence-transformers module stack, CLIP text features).",
            "Load the model with model_class='AutoModel' (the embed task then pools itself).",
            level=level,
        )
    _, everything = build_texts(texts)
    expected = engine_vectors(loaded, task, everything, None)
    text_task: Any = torch_engine.task  # embed and classify are text tasks
    subject: Subject
    build: dict[str, Any]
    if level == "bf16":
        subject = Autocast("bfloat16")
        build = {"autocast": subject.dtype}
    else:
        sample = text_task.collate(text_task.encode(list(PROBE_TEXTS[:2])))
        export_graph(module, dict(sample), output, workdir / "export.onnx")
        fusions = fuse(workdir / "export.onnx", workdir / "fused.onnx", module.config)
        subject = workdir / "fused.onnx"
        build = {"fusions": fusions, "opset": 17}
    if level == "int8" or int8 is not None:
        assert isinstance(subject, Path)
        choice = _int8(
            loaded,
            task,
            text_task,
            subject,
            workdir,
            int8 or Int8Scheme(),
            everything,
            expected,
            OPTIMIZE_LEVELS[level],
        )
        subject = choice.graph
        build["int8"] = choice.to_dict()
    return Built(subject, build, everything, expected)


def _int8(
    loaded: LoadedModel,
    task: str,
    text_task: Any,
    fused: Path,
    work: Path,
    scheme: Int8Scheme,
    texts: list[str],
    expected: Any,
    tolerance: Tolerance,
) -> Int8Choice:
    sweep_texts = texts[:SWEEP_TEXTS]
    reference = expected[: len(sweep_texts)]
    smoothed = 0
    if scheme.smooth_alpha is not None:  # calibrated on the sweep texts
        encoded = text_task.encode(sweep_texts)
        batches = (
            dict(text_task.collate(encoded[i : i + CALIBRATION_ROWS]))
            for i in range(0, len(encoded), CALIBRATION_ROWS)
        )
        ranges = activation_ranges(fused, batches)
        target = work / "smoothed.onnx"
        smoothed = smooth(fused, target, ranges, scheme.smooth_alpha)
        fused = target

    def measure(graph: Path) -> tuple[float, float]:
        got = engine_vectors(loaded, task, sweep_texts, graph)
        result = check_vectors(reference, got, Tolerance())
        return result.min_cosine, result.mean_cosine

    choice = choose(fused, work, scheme, measure, tolerance.min_cosine or 0.0)
    choice.smoothed_products = smoothed
    return choice
