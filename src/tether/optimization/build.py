"""``optimize(source, out_dir, level=...)``: an optimised bundle, or an error saying why not.

Steps: load the original through tether's guards; export the task's forward pass to
ONNX; fuse it; for int8, quantise with a sensitivity sweep (for bf16 the original module
runs under bfloat16 autocast, or OpenVINO runs the fused graph with bfloat16 products);
judge and race the runtimes that can run the result (``runtimes.py``); verify the
fastest against the original (parity on probes and user texts, the engine's own batches,
batch invariance); write a bundle whose manifest carries the evidence. Nothing is
written unless every check passes: the error names the first layer that parted ways.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tether.bundles.optimized import (
    GRAPH_NAME,
    REFERENCE_NAME,
    Evidence,
    Reference,
    check_vectors,
    has_cpu_feature,
    machine_record,
    save_reference,
)
from tether.bundles.probes import PROBE_TEXTS
from tether.errors import OptimizationError, OptimizationMismatchError, SpecError
from tether.inference.graphs.int8 import Int8Scheme
from tether.inference.graphs.subjects import (
    LEVELS,
    OPENVINO,
    Autocast,
    Built,
    Subject,
    build_subject,
    build_texts,
    engine_vectors,
    graph_of,
    runtime_of,
)
from tether.models.loading import LoadedModel
from tether.models.manifest import Manifest
from tether.models.spec import ModelSpec
from tether.optimization import check
from tether.optimization.runtimes import Ranking, check_runtime, rank_runtimes
from tether.tolerances import OPTIMIZE_LEVELS, PRESETS, Tolerance

#: Stored with the bundle for re-verification on another machine: the probes and this
#: many of the user's texts (the rest are in the evidence's figures only).
STORED_USER_TEXTS = 52
#: CPU flags that give bfloat16 dot products (AVX-512 BF16, AMX tiles).
BF16_FEATURES = ("avx512_bf16", "amx_bf16")
#: Texts run alone for the batch-invariance check.
INVARIANCE_TEXTS = 128


@dataclass
class OptimizeResult:
    """What ``optimize`` wrote and the evidence it wrote with it."""

    path: Path
    evidence: Evidence
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        e = self.evidence
        engine = e.parity["engine"]
        lines = [f"optimised {e.task} bundle ({e.level}) written to {self.path}"]
        if e.autocast is not None:
            lines.append(f"  runs: its own float32 weights under {e.autocast} autocast (PyTorch)")
        else:
            fusions = (e.build.get("int8") or {}).get("fusions") or e.build["fusions"]
            lines.append(f"  graph: {fusions or 'no fusions'}")
        if e.build.get("runtime"):
            lines.append("  runtime: " + _runtime_line(e.build["runtime"]))
        if "int8" in e.build:
            int8 = e.build["int8"]
            kept = int8["fp32_modules"]
            scheme = int8["scheme"]
            lines.append(
                f"  int8: {len(int8['quantized_modules'])} modules quantised, "
                f"{len(kept)} kept in float32"
                + (f" ({', '.join(kept)})" if kept else "")
                + f"; {int8['weights']} weights, "
                + ("per channel" if scheme["per_channel"] else "per tensor")
                + (
                    f"; {int8['smoothed_products']} products smoothed (alpha "
                    f"{scheme['smooth_alpha']})"
                    if int8.get("smoothed_products")
                    else ""
                )
                + _activations_line(int8)
            )
        for name in ("probes", "texts"):
            report = e.parity.get(name)
            if report:
                lines.append(
                    f"  parity on {report['texts']} {name}: max abs diff "
                    f"{report['max_abs_diff']:.3g}, cosine min {report['min_cosine']:.6f}"
                )
        lines.append(
            f"  engine batches, {engine['texts']} texts: max abs diff "
            f"{engine['max_abs_diff']:.3g}, cosine min {engine['min_cosine']:.6f} mean "
            f"{engine['mean_cosine']:.6f}"
        )
        inv = e.parity["batch_invariance"]
        lines.append(
            f"  alone vs batched, {inv['texts']} texts: cosine min {inv['min_cosine']:.6f}, "
            f"{inv.get('identical', 0)} identical bit for bit"
        )
        m = e.machine_record
        lines.append(
            f"  verified with {m.runtime} {m.runtime_version} on {m.cpu} "
            f"({len(m.cpu_features)} ISA flags); tolerance {e.limits.describe()}"
        )
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def _runtime_line(record: dict[str, Any]) -> str:
    """The chosen runtime and what each candidate measured, e.g. ``openvino (precision
    bf16), chosen by measurement: torch 269.4 texts/s, openvino bf16 342.1 texts/s``."""
    chosen = record["chosen"] + (
        f" (precision {record['precision']})" if record.get("precision") else ""
    )
    figures = []
    for c in record["candidates"]:
        name = c["runtime"] + (f" {c['precision']}" if c.get("precision") else "")
        if "skipped" in c:
            figures.append(f"{name} {c['skipped'].partition(':')[0]}")
        elif c.get("failures"):
            figures.append(f"{name} failed the level (cosine min {c['min_cosine']:.6f})")
        elif "texts_per_second" in c:
            figures.append(f"{name} {c['texts_per_second']} texts/s")
    how = "chosen by measurement" if record.get("race") else f"requested {record['requested']}"
    return f"{chosen}, {how}" + (f": {', '.join(figures)}" if figures else "")


def _activations_line(int8: dict[str, Any]) -> str:
    scheme = int8["scheme"]
    if scheme["activations"] == "static":
        line = f"; static activation scales from {int8['calibration_texts']} texts, batched"
        held = int8.get("held_out")
        if held:
            line += f" (held-out {held['texts']} texts: cosine min {held['min_cosine']:.6f})"
        return line
    line = "; dynamic activation scales, " + ("batched" if int8["batched"] else "one text per run")
    attempt = int8.get("static_attempt")
    if attempt:
        line += f" (static scales failed: {'; '.join(attempt['failures'])})"
    return line


def optimize(
    source: str | ModelSpec | LoadedModel,
    out_dir: str | Path,
    *,
    level: str = "exact",
    texts: Sequence[str] | None = None,
    task: str = "embed",
    overwrite: bool = False,
    int8: Int8Scheme | None = None,
    runtime: str = "auto",
) -> OptimizeResult:
    """Build an optimised bundle of ``source`` for ``task`` at ``level`` in ``out_dir``.

    Args:
        source: a model source or directory, a ModelSpec, or a LoadedModel.
        level: ``exact`` (fused float32 graph, max abs diff 1e-4 and cosine 0.9999 on
            every text), ``bf16`` (bfloat16 products, under autocast or on OpenVINO,
            cosine 0.999 on every text; needs a CPU with avx512_bf16 or AMX) or ``int8``.
        texts: the user's own texts (calibration and verification), besides the probes.
        task: ``embed`` or ``classify``.
        int8: how to quantise; default ``Int8Scheme()`` at level ``int8``. Given with
            another level, the graph is quantised all the same and judged by that
            level's tolerance (a way to see what int8 would cost).
        runtime: ``auto`` measures every installed runtime that can run the level
            (ONNX Runtime or OpenVINO for graphs, torch autocast or OpenVINO for
            ``bf16``) on ``texts`` and keeps the fastest that passes; or one of
            ``onnxruntime``, ``openvino``, ``torch``. The evidence records the figures.

    Returns:
        The bundle's path and its evidence.

    Raises:
        OptimizationMismatchError: the graph failed verification (the error names the first
            divergent module); nothing was written.
    """
    from tether.bundles.save import save
    from tether.inference.tasks import default_model_class
    from tether.models.loading import load

    if level not in OPTIMIZE_LEVELS:
        raise SpecError(
            f"Unknown optimisation level {level!r}.", f"Use level= one of {', '.join(LEVELS)}."
        )
    if level == "bf16" and not any(has_cpu_feature(f) for f in BF16_FEATURES):
        raise OptimizationError(
            "level 'bf16' needs bfloat16 compute, and this CPU reports none of "
            f"{', '.join(BF16_FEATURES)} in /proc/cpuinfo: bfloat16 would be emulated, "
            "slower than float32.",
            "Use level='exact' or level='int8' on this machine.",
            level=level,
        )
    if level == "bf16" and int8 is not None:
        raise SpecError(
            "int8= quantises an ONNX graph, and level 'bf16' runs no graph.",
            "Drop int8=, or use level='int8'.",
        )
    check_runtime(runtime)
    if isinstance(source, LoadedModel):
        loaded = source
    else:
        spec = (
            source
            if isinstance(source, ModelSpec)
            else ModelSpec(source=source, model_class=default_model_class(task))
        )
        loaded = load(spec)
    if loaded.optimized is not None:
        raise OptimizationError(
            f"{str(loaded.path)!r} is already an optimised bundle.",
            "Optimise the original model (the source the bundle was made from).",
            level=level,
        )
    tolerance = OPTIMIZE_LEVELS[level]
    user, everything = build_texts(texts)
    probes = list(PROBE_TEXTS)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tether-optimize-") as tmp:
        work = Path(tmp)
        float_graph = level == "bf16" and runtime in ("auto", OPENVINO) and _installed(OPENVINO)
        built = build_subject(loaded, task, level, user, work, int8=int8, float_graph=float_graph)
        expected = built.expected
        ranking = rank_runtimes(loaded, task, built, tolerance, runtime)
        subject, verdicts, failures = _verified(loaded, task, level, built, user, ranking)
        build = _build_record(built.build, subject, ranking)
        if failures:
            module_name, _ = check.divergent_module(loaded, subject, everything, tolerance, work)
            raise _refusal(level, tolerance, failures, module_name, verdicts, build)
        stored = probes + [t for t in user if t not in set(probes)][:STORED_USER_TEXTS]
        reference = Reference(
            stored,
            expected[: len(stored)],
            verdicts.pop("_vectors")[: len(stored)],
        )
        evidence = Evidence(
            level=level,
            task=task,
            graph=GRAPH_NAME if graph_of(subject) is not None else None,
            reference=REFERENCE_NAME,
            tolerance=tolerance.to_dict(),
            machine=machine_record(runtime_of(subject)).to_dict(),
            parity=verdicts,
            build=build,
        )

        def add(directory: Path, manifest: Manifest) -> None:
            (directory / GRAPH_NAME).parent.mkdir(parents=True, exist_ok=True)
            graph = graph_of(subject)
            if graph is not None:
                shutil.copyfile(graph, directory / GRAPH_NAME)
            save_reference(reference, directory / REFERENCE_NAME)
            manifest.optimized = evidence.to_dict()

        path = save(loaded, out_dir, overwrite=overwrite, additions=add)
    return OptimizeResult(path, evidence, notes)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _verified(
    loaded: LoadedModel, task: str, level: str, built: Built, user: list[str], ranking: Ranking
) -> tuple[Subject, dict[str, Any], list[str]]:
    """Verify the ranked candidates, fastest first, and keep the first that passes:
    (its subject, figures, no failures); when none passes (or none passed the ranking's
    judge), the fastest one's (or the first judged one's) figures and failures."""
    order = ranking.subjects or [ranking.fallback or built.subject]
    first: tuple[Subject, dict[str, Any], list[str]] | None = None
    for subject in order:
        verdicts, failures = verify_subject(
            loaded, task, level, replace(built, subject=subject), user
        )
        if not failures:
            return subject, verdicts, failures
        first = first or (subject, verdicts, failures)
    assert first is not None
    return first


def _build_record(build: dict[str, Any], subject: Subject, ranking: Ranking) -> dict[str, Any]:
    """The evidence's build section for the runtime chosen: what runs, and the ranking.
    A ``bf16`` build that runs its float32 graph names no autocast; one that runs under
    autocast names no graph fusions."""
    record = dict(build)
    if isinstance(subject, Autocast):
        record.pop("fusions", None)
        record.pop("opset", None)
    elif "autocast" in record:
        record.pop("autocast")
    record["runtime"] = ranking.chosen(subject)
    return record


def verify_subject(
    loaded: LoadedModel, task: str, level: str, built: Built, user: list[str]
) -> tuple[dict[str, Any], list[str]]:
    """Verify ``built`` against the original as ``optimize`` does (parity on the probes
    and on ``user``, the engine's batches, batch invariance) under ``level``'s preset:
    (the figures of each check, with the subject's outputs under ``_vectors``; the
    failures, each named by its check, empty when every check passed)."""
    verdicts = _verify(
        loaded,
        task,
        built.subject,
        list(PROBE_TEXTS),
        user,
        built.expected,
        built.texts,
        OPTIMIZE_LEVELS[level],
    )
    failures = [
        f"{name}: {failure}"
        for name, verdict in verdicts.items()
        if isinstance(verdict, dict)
        for failure in verdict.get("failures", [])
    ]
    return verdicts, failures


def _verify(
    loaded: LoadedModel,
    task: str,
    subject: Subject,
    probes: list[str],
    user: list[str],
    expected: Any,
    engine_texts: list[str],
    tolerance: Tolerance,
) -> dict[str, Any]:
    verdicts: dict[str, Any] = {}
    label = (
        f"{subject.dtype} autocast of {loaded.model_id}"
        if isinstance(subject, Autocast)
        else f"optimised graph of {loaded.model_id} ({runtime_of(subject)})"
    )
    groups = {"probes": probes, "texts": [t for t in user if t not in set(probes)]}
    for name, group in groups.items():
        if not group:
            continue
        report = check.parity(loaded, subject, group, tolerance, label)
        verdicts[name] = _parity_figures(report)
    got = engine_vectors(loaded, task, engine_texts, subject)
    engine = check_vectors(expected, got, tolerance)
    verdicts["engine"] = engine.to_dict()
    sample = engine_texts[:INVARIANCE_TEXTS]
    invariance = check.batch_invariance(loaded, task, subject, sample, got[: len(sample)])
    verdicts["batch_invariance"] = {
        "texts": invariance.texts,
        "min_cosine": invariance.min_cosine,
        "identical": invariance.identical,
        "required": PRESETS["batch-invariance"].min_cosine,
        "failures": [f"a text alone vs batched: {f}" for f in invariance.failures],
    }
    verdicts["_vectors"] = got
    return verdicts


def _parity_figures(report: Any) -> dict[str, Any]:
    finals = {o.name: o for o in report.outputs}
    max_abs = max((o.max_abs for o in report.outputs), default=0.0)
    cos = report.embedding or next(iter(finals.values()))
    return {
        "texts": report.texts,
        "max_abs_diff": max_abs,
        "min_cosine": cos.cos_min,
        "mean_cosine": cos.cos_mean,
        "outputs": {
            o.name: {"max_abs": o.max_abs, "ulps": _finite(o.ulps), "cos_min": o.cos_min}
            for o in report.outputs
        },
        "embedding": cos.name,
        "failures": list(report.failures),
    }


def _finite(value: float) -> float | None:
    import math

    return value if math.isfinite(value) else None


def _refusal(
    level: str,
    tolerance: Tolerance,
    failures: list[str],
    module_name: str | None,
    verdicts: dict[str, Any],
    build: dict[str, Any],
) -> OptimizationMismatchError:
    engine = verdicts.get("engine", {})
    where = f" First divergent module: {module_name}." if module_name else ""
    kept = ""
    if "int8" in build:
        sweep = sorted(build["int8"]["sweep"], key=lambda s: s["min_cosine"])[:4]
        if sweep:
            kept = (
                " Most sensitive modules (alone quantised, min cosine): "
                + ", ".join(f"{s['module']} {s['min_cosine']:.4f}" for s in sweep)
                + "."
            )
    if "int8" in build:
        hint = (
            "Keep the modules named above in float32 (int8=Int8Scheme(keep_fp32=(...))), "
            "or use level='exact'."
        )
    elif "autocast" in build:
        hint = "This model needs more than bfloat16's 8-bit mantissa: use level='exact'."
    else:
        hint = (
            "Run the original model; `tether compare SOURCE graph.onnx` shows the full "
            "report of an exported graph."
        )
    return OptimizationMismatchError(
        f"The {level} optimisation does not pass {tolerance.describe()}; nothing was "
        "written: " + "; ".join(failures) + "." + where + kept,
        hint,
        level=level,
        divergent=module_name,
        min_cosine=engine.get("min_cosine"),
        max_abs_diff=engine.get("max_abs_diff"),
    )
