"""int8 for an optimised graph: a scheme, a per-module sensitivity sweep, a choice.

Two ways to set activation scales. ``static`` (the default, qdq.py): calibrated once on
the user's texts and frozen in the graph, so whole padded batches run and a text's vector
does not depend on its batch. ``dynamic``: ONNX Runtime's dynamic quantisation, which
stores MatMul (and fused Attention) weights as int8 and quantises activations on the fly,
per tensor; the graph then runs one text at a time. Which modules tolerate it is measured,
not assumed: each quantisable module is quantised alone and the lowest per-text cosine
of the task's outputs against the original is recorded; modules are then kept in float32,
most sensitive first, until the whole graph passes the int8 level on the sweep texts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tether.errors import SpecError, require_extra
from tether.inference.backends.onnx import ROWS_KEY
from tether.inference.graphs.export import module_of
from tether.inference.graphs.qdq import quantize_static

#: How activation scales are set: frozen from calibration, or per run.
ACTIVATIONS = ("static", "dynamic")

#: The node types int8 replaces: matrix products with constant weights, fused attention.
QUANTIZED_OPS = ("MatMul", "Attention")


@dataclass(frozen=True)
class Int8Scheme:
    """How a graph is quantised. The defaults are what passed on all-MiniLM-L6-v2 and
    fortunes (docs/optimize.md has the table of levers): ``activations="static"`` (scales
    calibrated on every other one of the user's texts and frozen; the level is also
    checked on the texts calibration never saw), activation outliers smoothed into the
    weights (``smooth_alpha``, see ``tether.inference.graphs.smooth``), one scale per
    output channel, and a sensitivity sweep that keeps modules that still break the level
    in float32. When static still fails, ``dynamic_fallback`` builds the dynamic graph
    instead (the evidence records the static attempt).

    ``activations="dynamic"`` quantises activations per run: ``weight_type`` (unsigned
    int8 weights by default) and ``one_text_per_run`` (dynamic scales then never mix
    texts or padding) apply to it only; static weights are always signed int8 (what
    VNNI and AMX multiply with unsigned activations). ``activations="dynamic",
    per_channel=False, sweep=False, smooth_alpha=None, one_text_per_run=False`` is the
    textbook one-liner (one scale per weight matrix, everything quantised, batched): the
    refusal tests use it."""

    activations: str = "static"  # "static" or "dynamic"
    dynamic_fallback: bool = True
    per_channel: bool = True
    reduce_range: bool = False
    weight_type: str = "uint8"  # "int8" (S8) or "uint8" (U8)
    smooth_alpha: float | None = 0.8  # None: no smoothing
    one_text_per_run: bool = True
    sweep: bool = True
    keep_fp32: tuple[str, ...] = ()  # module names never quantised
    max_fp32: int = 8  # most modules the sweep may keep in float32
    #: static: the sweep aims this fraction of the way from the level's min cosine to 1
    #: (0.995 for int8's 0.99) on held-out texts, because the worst of a few hundred
    #: held-out texts is better than the worst of all the texts the graph will meet (on
    #: 800 unseen package descriptions: 0.985, against 0.993 on 100 held out).
    static_headroom: float = 0.5

    def __post_init__(self) -> None:
        if self.activations not in ACTIVATIONS:
            raise SpecError(
                f"Int8Scheme.activations is {self.activations!r}.",
                f"Use activations= one of {', '.join(ACTIVATIONS)}.",
            )

    @property
    def static(self) -> bool:
        return self.activations == "static"

    @property
    def batched(self) -> bool:
        """Whether the graph runs whole padded batches."""
        return self.static or not self.one_text_per_run

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["keep_fp32"] = list(self.keep_fp32)
        return out


def quantisable_modules(graph_path: Path) -> dict[str, list[str]]:
    """Module name -> the graph nodes int8 would quantise for it, in graph order."""
    import onnx

    graph = onnx.load(str(graph_path), load_external_data=False)
    initializers = {i.name for i in graph.graph.initializer}
    found: dict[str, list[str]] = {}
    for node in graph.graph.node:
        if node.op_type not in QUANTIZED_OPS:
            continue
        if node.op_type == "MatMul" and not any(i in initializers for i in node.input):
            continue  # activation x activation (attention scores): no weights to quantise
        module = module_of(node.output[0]) or node.name
        if node.op_type == "MatMul":
            module = module.removesuffix(".MatMul")
        found.setdefault(module, []).append(node.name)
    return found


def quantize(
    source: Path,
    target: Path,
    scheme: Int8Scheme,
    nodes: list[str] | None,
    bounds: Mapping[str, tuple[Any, Any]] | None = None,
) -> None:
    """int8 quantisation of ``nodes`` (None: every quantisable node): static with the
    activation ``bounds`` of ``calibration.activation_bounds`` (needed then), or dynamic."""
    if scheme.static:
        if bounds is None:
            raise ValueError("static int8 needs the calibrated activation bounds")
        quantize_static(
            source,
            target,
            bounds,
            nodes,
            per_channel=scheme.per_channel,
            reduce_range=scheme.reduce_range,
        )
        return
    require_extra("onnxruntime", "onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # its modules log fusion and shape notes on loggers named after themselves
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=scheme.per_channel,
            reduce_range=scheme.reduce_range,
            weight_type=QuantType.QInt8 if scheme.weight_type == "int8" else QuantType.QUInt8,
            op_types_to_quantize=list(QUANTIZED_OPS),
            nodes_to_quantize=nodes,
            # Fused contrib ops defeat shape inference; their outputs are float32.
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": 1},
        )
    finally:
        logging.disable(logging.NOTSET)
    if scheme.one_text_per_run:
        import onnx

        graph = onnx.load(str(target))
        props = {p.key: p.value for p in graph.metadata_props}
        onnx.helper.set_model_props(graph, {**props, ROWS_KEY: "text"})
        onnx.save(graph, str(target))


@dataclass
class Sensitivity:
    """The lowest per-text cosine with only ``module`` quantised."""

    module: str
    min_cosine: float
    mean_cosine: float


@dataclass
class Int8Choice:
    """The quantised graph the sweep settled on, and how it got there."""

    graph: Path
    scheme: Int8Scheme
    quantized: list[str]
    fp32: list[str]
    sweep: list[Sensitivity] = field(default_factory=list)
    sweep_min_cosine: float | None = None  # the chosen graph on the sweep texts
    smoothed_products: int = 0  # products whose activation outliers moved to the weights
    calibration_texts: int = 0  # texts the smoothing (and static scales) were measured on
    held_out: dict[str, Any] | None = None  # static: the level on texts calibration never saw
    static_attempt: dict[str, Any] | None = None  # a static graph that failed, before fallback
    fusions: dict[str, int] | None = None  # when the graph was fused apart from the exact one
    failures: list[str] = field(default_factory=list)  # static: the level's, when judged
    sweep_target: float | None = None  # static: the min cosine the sweep aimed at
    calibration_min_cosine: float | None = None  # static: on the calibration texts

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme.to_dict(),
            "batched": self.scheme.batched,
            "weights": "int8" if self.scheme.static else self.scheme.weight_type,
            "calibration_texts": self.calibration_texts,
            "held_out": self.held_out,
            "static_attempt": self.static_attempt,
            "fusions": self.fusions,
            "failures": self.failures,
            "sweep_target": self.sweep_target,
            "calibration_min_cosine": self.calibration_min_cosine,
            "quantized_modules": self.quantized,
            "fp32_modules": self.fp32,
            "sweep": [asdict(s) for s in self.sweep],
            "sweep_min_cosine": self.sweep_min_cosine,
            "smoothed_products": self.smoothed_products,
        }


#: Cosines of the task outputs on the sweep texts: graph path -> (min, mean).
Measure = Callable[[Path], tuple[float, float]]


def choose(
    fused: Path,
    workdir: Path,
    scheme: Int8Scheme,
    measure: Measure,
    min_cosine: float,
    bounds: Mapping[str, tuple[Any, Any]] | None = None,
) -> Int8Choice:
    """Quantise ``fused``: everything but ``scheme.keep_fp32``, then, with ``sweep``, keep
    the most sensitive modules in float32 until ``measure`` gives ``min_cosine``.
    ``bounds``: the calibrated activation bounds a static scheme freezes."""
    modules = quantisable_modules(fused)
    kept = [m for m in modules if m in set(scheme.keep_fp32)]

    def build(fp32: list[str], name: str) -> Path:
        target = workdir / name
        nodes = [n for m, ns in modules.items() if m not in fp32 for n in ns]
        quantize(fused, target, scheme, nodes, bounds)
        return target

    graph = build(kept, "int8.onnx")
    if not scheme.sweep:
        return Int8Choice(graph, scheme, [m for m in modules if m not in kept], kept)
    low, _ = measure(graph)
    sweep: list[Sensitivity] = []
    if low < min_cosine:
        for module in modules:
            if module in kept:
                continue
            alone = workdir / "alone.onnx"
            quantize(fused, alone, scheme, modules[module], bounds)
            worst, mean = measure(alone)
            sweep.append(Sensitivity(module, worst, mean))
        for item in sorted(sweep, key=lambda s: s.min_cosine):
            if low >= min_cosine or len(kept) >= scheme.max_fp32 + len(scheme.keep_fp32):
                break
            kept.append(item.module)
            graph = build(kept, "int8.onnx")
            low, _ = measure(graph)
    quantized = [m for m in modules if m not in kept]
    return Int8Choice(graph, scheme, quantized, kept, sweep, low)
