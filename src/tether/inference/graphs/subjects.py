"""``build_subject``: the candidate an optimisation level makes of a model, and how to run it.

A *subject* is what replaces the original's forward pass: an ONNX graph's path (run by
ONNX Runtime), ``OpenVinoGraph`` (the same kind of file run by OpenVINO at a precision),
or ``Autocast(dtype)``, the original module itself under ``torch.autocast`` (the ``bf16``
level). ``runtime_candidates`` lists the subjects that run a built level on each runtime;
``tether.optimization.runtimes`` measures them and keeps the fastest that passes. Steps
per level:

* ``exact``: export the task's module to ONNX, fuse it (ONNX Runtime's transformer
  optimizer);
* ``bf16``: no graph, the original module under bfloat16 autocast;
* ``int8``: a fused graph, activation outliers smoothed into the weights, then quantised
  with a per-module sensitivity sweep. Static (the default): attention fused as
  MultiHeadAttention (its projections stay MatMuls), calibrated on the probes and every
  other one of the user's texts, and also judged on the others (held out); if it fails,
  dynamic (one text per run) on the fully fused graph, calibrated on the sweep texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tether.bundles.optimized import AUTOCAST_RUNTIME, OPENVINO_RUNTIME, RUNTIME, check_vectors
from tether.bundles.probes import PROBE_TEXTS
from tether.errors import OptimizationError, SpecError
from tether.inference.backends import AutocastBackend, OnnxBackend, OpenVinoBackend
from tether.inference.backends.onnx import ROWS_KEY
from tether.inference.engine import Engine
from tether.inference.graphs.calibration import activation_bounds
from tether.inference.graphs.export import export_graph, fuse
from tether.inference.graphs.int8 import Int8Choice, Int8Scheme, choose
from tether.inference.graphs.qdq import STATIC_KEY
from tether.inference.graphs.smooth import activation_ranges, smooth
from tether.inference.optimized import task_vectors
from tether.models.loading import LoadedModel
from tether.tolerances import OPTIMIZE_LEVELS, Tolerance

#: The levels a subject can be built for, in order of how much they change numbers.
LEVELS = tuple(OPTIMIZE_LEVELS)
#: Texts the int8 sensitivity sweep measures each candidate on (probes first).
SWEEP_TEXTS = 256
#: Rows per batch when measuring activation ranges (smoothing, static scales).
CALIBRATION_ROWS = 16
#: Held-out texts a static int8 graph is judged on before it is chosen (the whole
#: verification later covers every text).
HELD_OUT_TEXTS = 1024


@dataclass(frozen=True)
class Autocast:
    """The original model's own module, run under ``torch.autocast("cpu", dtype)``."""

    dtype: str = "bfloat16"


@dataclass(frozen=True)
class OpenVinoGraph:
    """An ONNX graph run by OpenVINO with ``precision`` (``f32``, or ``bf16`` products)."""

    path: Path
    precision: str = "f32"


Subject = Path | Autocast | OpenVinoGraph
#: The package whose kernels run each kind of subject (the evidence's runtime).
ONNXRUNTIME, OPENVINO, TORCH = RUNTIME, OPENVINO_RUNTIME, AUTOCAST_RUNTIME
RUNTIMES = (ONNXRUNTIME, OPENVINO, TORCH)


def runtime_of(subject: Subject) -> str:
    """The runtime package that runs ``subject``: onnxruntime, openvino or torch."""
    if isinstance(subject, Autocast):
        return TORCH
    return OPENVINO if isinstance(subject, OpenVinoGraph) else ONNXRUNTIME


def graph_of(subject: Subject) -> Path | None:
    """The ONNX file ``subject`` runs (None: autocast runs the module itself)."""
    if isinstance(subject, Autocast):
        return None
    return subject.path if isinstance(subject, OpenVinoGraph) else subject


@dataclass
class Built:
    """A subject and what went into it."""

    subject: Subject
    build: dict[str, Any]  # the evidence's build section: fusions, opset, int8 choice
    texts: list[str]  # the probes, then the user's texts (deduplicated): what it was built on
    expected: Any  # (texts, dim) float32: the original's task outputs on ``texts``
    #: the fused float32 graph of a ``bf16`` build (OpenVINO runs it with bf16 products)
    float_graph: Path | None = None


def backend_for(
    engine: Engine, subject: Subject
) -> AutocastBackend | OnnxBackend | OpenVinoBackend:
    """The backend that runs ``subject`` for ``engine``'s task."""
    if isinstance(subject, Autocast):
        return AutocastBackend.for_task(engine.task, subject.dtype)
    return graph_backend(subject)


def graph_backend(subject: Path | OpenVinoGraph) -> OnnxBackend | OpenVinoBackend:
    """The backend that runs a graph subject."""
    if isinstance(subject, OpenVinoGraph):
        return OpenVinoBackend(subject.path, precision=subject.precision)
    return OnnxBackend(subject)


def runtime_candidates(built: Built) -> list[Subject]:
    """Every subject that runs ``built``'s level, the built one first.

    A float32 graph runs on ONNX Runtime or on OpenVINO in float32 (its bf16 default
    would change an ``exact`` graph). A static int8 graph runs on ONNX Runtime, or on
    OpenVINO with float32 or bfloat16 arithmetic around its int8 products (attention,
    GELU, layer norms: measured 14-15% faster in bf16 on MiniLM, at the same per-text
    cosine; the level's judge decides). The ``bf16`` level runs under torch autocast or
    as the fused float32 graph with OpenVINO's bfloat16 products. A one-text-per-run
    graph (dynamic int8) stays on ONNX Runtime: OpenVINO would run its padded batches
    whole.
    """
    subject = built.subject
    if isinstance(subject, Autocast):
        if built.float_graph is None:
            return [subject]
        return [subject, OpenVinoGraph(built.float_graph, "bf16")]
    if isinstance(subject, OpenVinoGraph):
        return [subject]
    import onnx

    metadata = {
        p.key: p.value for p in onnx.load(str(subject), load_external_data=False).metadata_props
    }
    if metadata.get(ROWS_KEY) == "text":
        return [subject]
    if int(metadata.get(STATIC_KEY) or 0):
        return [subject, OpenVinoGraph(subject, "f32"), OpenVinoGraph(subject, "bf16")]
    return [subject, OpenVinoGraph(subject, "f32")]


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
    float_graph: bool = False,
) -> Built:
    """Build ``level``'s subject of ``loaded`` for ``task`` in ``workdir`` (graphs are
    files there), calibrated on the probes and ``texts``.

    ``int8``: how to quantise (default ``Int8Scheme()`` at level ``int8``); given with
    ``exact``, the fused graph is quantised all the same. ``float_graph``: at ``bf16``,
    also export and fuse the float32 graph (``Built.float_graph``), for a runtime that
    runs it with bfloat16 products.
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
    fusions: dict[str, int] | None = None
    if level != "bf16" or float_graph:
        sample = text_task.collate(text_task.encode(list(PROBE_TEXTS[:2])))
        export_graph(module, dict(sample), output, workdir / "export.onnx")
        fusions = fuse(workdir / "export.onnx", workdir / "fused.onnx", module.config)
    if level == "bf16":
        subject = Autocast("bfloat16")
        build = {"autocast": subject.dtype}
        if fusions is not None:
            build.update(fusions=fusions, opset=17)
    else:
        subject = workdir / "fused.onnx"
        build = {"fusions": fusions, "opset": 17}
    if level == "int8" or int8 is not None:
        assert isinstance(subject, Path)
        quantizer = _Int8(
            loaded, task, text_task, workdir, everything, expected, OPTIMIZE_LEVELS[level]
        )
        scheme = int8 or Int8Scheme()
        choice = None
        if scheme.static:
            attention_free = workdir / "fused-static.onnx"
            fused_static = fuse(
                workdir / "export.onnx", attention_free, module.config, packed_attention=False
            )
            choice = quantizer.static(attention_free, scheme)
            choice.fusions = fused_static
            if not quantizer.passes(choice) and scheme.dynamic_fallback:
                attempt = choice.to_dict()
                attempt.pop("static_attempt")
                choice = quantizer.dynamic(subject, replace(scheme, activations="dynamic"))
                choice.static_attempt = attempt
        if choice is None:
            choice = quantizer.dynamic(subject, scheme)
        subject = choice.graph
        build["int8"] = choice.to_dict()
    graph = workdir / "fused.onnx" if level == "bf16" and float_graph else None
    return Built(subject, build, everything, expected, graph)


@dataclass
class _Int8:
    """Quantising one model's graph for one task: the texts, the reference, the level."""

    loaded: LoadedModel
    task: str
    text_task: Any
    work: Path
    texts: list[str]  # the probes, then the user's texts
    expected: Any  # the original's outputs on ``texts``
    tolerance: Tolerance

    def dynamic(self, fused: Path, scheme: Int8Scheme) -> Int8Choice:
        """Dynamic activation scales; smoothing calibrated on the sweep texts."""
        sweep_texts = self.texts[:SWEEP_TEXTS]
        graph, smoothed = self._smoothed(fused, scheme, sweep_texts, "smoothed.onnx")
        choice = choose(graph, self.work, scheme, self._measure(sweep_texts), self._floor)
        choice.smoothed_products = smoothed
        choice.calibration_texts = len(sweep_texts) if scheme.smooth_alpha is not None else 0
        return choice

    def static(self, graph: Path, scheme: Int8Scheme) -> Int8Choice:
        """Frozen activation scales, calibrated on the probes and every other user text
        (all of them when there are fewer than 8: too few to hold any out). The sweep
        measures the held-out rest, where a value beyond the calibrated range saturates,
        and aims at ``scheme.static_headroom`` above the level; the graph must then pass
        the level on the calibration texts and on the held-out ones."""
        probes = len(PROBE_TEXTS)
        user = self.texts[probes:]
        held = user[1::2] if len(user) >= 8 else []
        calibration = self.texts[:probes] + (user[0::2] if held else user)
        smoothed_graph, smoothed = self._smoothed(
            graph, scheme, calibration, "smoothed-static.onnx"
        )
        bounds = activation_bounds(smoothed_graph, self._batches(calibration))
        sweep_texts = (held or calibration)[:SWEEP_TEXTS]
        target = self._floor + scheme.static_headroom * (1.0 - self._floor)
        choice = choose(
            smoothed_graph, self.work, scheme, self._measure(sweep_texts), target, bounds
        )
        choice.smoothed_products = smoothed
        choice.calibration_texts = len(calibration)
        choice.sweep_target = target
        # judged by the level's whole tolerance (not only the sweep's cosine), on the
        # calibration texts and on the held-out ones: what decides the dynamic fallback
        calibrated = self._judge(calibration[:SWEEP_TEXTS], choice.graph)
        choice.calibration_min_cosine = calibrated.min_cosine
        choice.failures = [f"calibration texts: {f}" for f in calibrated.failures]
        if held:
            checked = self._judge(held[:HELD_OUT_TEXTS], choice.graph)
            choice.held_out = {
                "texts": checked.texts,
                "min_cosine": checked.min_cosine,
                "mean_cosine": checked.mean_cosine,
                "max_abs_diff": checked.max_abs_diff,
            }
            choice.failures += [f"held-out texts: {f}" for f in checked.failures]
        if choice.sweep_min_cosine is None:
            choice.sweep_min_cosine = (
                choice.held_out["min_cosine"] if choice.held_out else calibrated.min_cosine
            )
        return choice

    def passes(self, choice: Int8Choice) -> bool:
        """Whether the chosen graph met the level on every text it was judged on."""
        return not choice.failures

    @property
    def _floor(self) -> float:
        return self.tolerance.min_cosine or 0.0

    def _batches(self, texts: list[str]) -> Any:
        encoded = self.text_task.encode(texts)
        return (
            dict(self.text_task.collate(encoded[i : i + CALIBRATION_ROWS]))
            for i in range(0, len(encoded), CALIBRATION_ROWS)
        )

    def _smoothed(
        self, graph: Path, scheme: Int8Scheme, texts: list[str], name: str
    ) -> tuple[Path, int]:
        if scheme.smooth_alpha is None:
            return graph, 0
        ranges = activation_ranges(graph, self._batches(texts))
        target = self.work / name
        return target, smooth(graph, target, ranges, scheme.smooth_alpha)

    def _judge(self, texts: list[str], graph: Path, tolerance: Tolerance | None = None) -> Any:
        """``graph``'s task outputs on ``texts`` against the original's, by ``tolerance``
        (default: the level's)."""
        position = {t: i for i, t in enumerate(self.texts)}
        reference = self.expected[[position[t] for t in texts]]
        got = engine_vectors(self.loaded, self.task, texts, graph)
        return check_vectors(reference, got, self.tolerance if tolerance is None else tolerance)

    def _measure(self, texts: list[str]) -> Any:
        """The sweep's measure on ``texts``: (min, mean) per-text cosine of a graph."""

        def measure(graph: Path) -> tuple[float, float]:
            result = self._judge(texts, graph, Tolerance())
            return result.min_cosine, result.mean_cosine

        return measure
