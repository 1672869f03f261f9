"""The evidence an optimised bundle carries, and the checks that read it.

An optimised bundle (``tether.optimize``) is an ordinary bundle plus an ONNX graph and
the proof that the graph is still the model: the parity figures it passed on the probe
texts and the user's texts, the tolerance of its level, the machine it was verified on
(CPU features and runtime version: kernels differ per instruction set, int8 ones most),
and reference outputs on stored texts so that another machine can check it again::

    OUT_DIR/
      ...                          the bundle (weights, tokenizer, fingerprint, card)
      optimized/model.onnx         the optimised graph
      optimized/reference.tensors  outputs of the original and of the graph on stored texts
      tether.json                  manifest; its ``optimized`` section is the evidence

A ``bf16`` bundle may have no graph: it runs its own float32 weights through PyTorch
under bfloat16 autocast (the evidence's ``graph`` is None, its ``build`` says
``autocast``, and its machine record names torch as the runtime). The machine record's
runtime says what runs a graph: ``onnxruntime``, or ``openvino`` at the precision in
``build.runtime`` (the runtime ``tether optimize`` measured fastest on the machine).

The ONNX file and the reference are listed (with sha256) in the manifest like every
other file, so ``load()`` refuses a changed graph. Running the graph lives in
``tether.inference`` (it needs ONNX Runtime); building it in ``tether.optimization``.
"""

from __future__ import annotations

import json
import platform
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tether.errors import BundleError
from tether.tolerances import Tolerance

OPTIMIZED_DIR = "optimized"
GRAPH_NAME = f"{OPTIMIZED_DIR}/model.onnx"
REFERENCE_NAME = f"{OPTIMIZED_DIR}/reference.tensors"
EVIDENCE_FORMAT = "tether-optimized/1"
#: The runtime whose kernels run the graph; its version is part of the evidence.
RUNTIME = "onnxruntime"
#: The runtime of autocast bundles (``bf16``): PyTorch's own kernels.
AUTOCAST_RUNTIME = "torch"
#: The other runtime a graph may be verified on (``build.runtime.precision``: f32, bf16).
OPENVINO_RUNTIME = "openvino"
#: The low-precision types an autocast bundle may name (``build["autocast"]``).
AUTOCAST_DTYPES = ("bfloat16", "float16")

#: CPU flags that choose kernels (vector width, int8 dot products, bf16, AMX): a change
#: in any of them may change results, so a bundle verified with one set re-verifies.
_ISA_FLAG = re.compile(r"^(avx|amx|sse|ssse|fma|f16c|vnni|bf16|fp16|asimd|sve|neon)")


@dataclass(frozen=True)
class MachineRecord:
    """What the numerics of a graph depend on besides the graph itself."""

    cpu: str
    cpu_features: tuple[str, ...]
    runtime: str
    runtime_version: str | None
    arch: str = field(default_factory=platform.machine)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cpu_features"] = list(self.cpu_features)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MachineRecord:
        return cls(
            cpu=str(data.get("cpu", "")),
            cpu_features=tuple(data.get("cpu_features") or ()),
            runtime=str(data.get("runtime", RUNTIME)),
            runtime_version=data.get("runtime_version"),
            arch=str(data.get("arch", "")),
        )


def cpu_info(path: str | Path = "/proc/cpuinfo") -> tuple[str, tuple[str, ...]]:
    """(CPU model name, sorted instruction-set flags) of this machine, from /proc/cpuinfo;
    (platform.processor(), ()) where there is no such file (macOS, Windows)."""
    path = Path(path)
    if not path.is_file():
        return platform.processor() or platform.machine(), ()
    name, flags = "", set[str]()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not name:
            name = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = {f for f in value.split() if _ISA_FLAG.match(f)}
    return name or platform.machine(), tuple(sorted(flags))


def machine_record(runtime: str = RUNTIME) -> MachineRecord:
    """This machine's record: CPU, its ISA flags, and the installed version of ``runtime``
    (the package whose kernels run the optimised model)."""
    from importlib.metadata import PackageNotFoundError, version

    name, flags = cpu_info()
    try:
        runtime_version: str | None = version(runtime)
    except PackageNotFoundError:
        runtime_version = None
    return MachineRecord(name, flags, runtime, runtime_version)


def has_cpu_feature(feature: str) -> bool:
    """Whether this CPU reports ``feature`` (an /proc/cpuinfo flag such as avx512_bf16)."""
    return feature in cpu_info()[1]


def machine_changes(recorded: MachineRecord, current: MachineRecord) -> list[str]:
    """How ``current`` differs from the machine the evidence was made on (empty: same).

    The CPU's marketing name is not compared: the same name ships with different
    features (virtual machines mask some), and the features are what choose kernels.
    """
    changes = []
    if recorded.arch != current.arch:
        changes.append(f"architecture {recorded.arch} -> {current.arch}")
    lost = sorted(set(recorded.cpu_features) - set(current.cpu_features))
    gained = sorted(set(current.cpu_features) - set(recorded.cpu_features))
    if lost:
        changes.append(f"CPU lacks {', '.join(lost)}")
    if gained:
        changes.append(f"CPU adds {', '.join(gained)}")
    if recorded.runtime_version != current.runtime_version:
        changes.append(
            f"{recorded.runtime} {recorded.runtime_version} -> {current.runtime_version}"
        )
    return changes


@dataclass
class Evidence:
    """The manifest's ``optimized`` section: what was built, how it was checked, where."""

    level: str
    task: str
    graph: str | None  # bundle-relative path of the ONNX file; None: autocast (bf16)
    reference: str  # bundle-relative path of the stored outputs
    tolerance: dict[str, Any]
    machine: dict[str, Any]
    parity: dict[str, Any]  # figures of the verification: texts, max abs diff, cosines
    build: dict[str, Any]  # fusions, quantisation settings, layers kept in float32
    format: str = EVIDENCE_FORMAT

    @property
    def machine_record(self) -> MachineRecord:
        return MachineRecord.from_dict(self.machine)

    @property
    def autocast(self) -> str | None:
        """The dtype the bundle's own weights run under (autocast bundles), else None."""
        return str(self.build["autocast"]) if self.graph is None else None

    @property
    def runtime(self) -> str:
        """The package whose kernels run the bundle: onnxruntime, openvino or torch."""
        return self.machine_record.runtime

    @property
    def precision(self) -> str | None:
        """OpenVINO's inference precision for the graph (``f32``, ``bf16``), else None."""
        return (self.build.get("runtime") or {}).get("precision")

    @property
    def limits(self) -> Tolerance:
        """The tolerance the bundle was verified by (judged again by ``tether.judging``)."""
        return Tolerance.from_dict(self.tolerance, default_name=self.level)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Evidence:
        if not isinstance(data, dict) or data.get("format") != EVIDENCE_FORMAT:
            raise BundleError(
                f"{where}: the manifest's optimized section is not {EVIDENCE_FORMAT} evidence.",
                "Re-create the bundle with `tether optimize`.",
                path=where,
            )
        known = set(cls.__dataclass_fields__)
        missing = sorted(known - set(data))
        if missing:
            raise BundleError(
                f"{where}: the optimized evidence lacks {', '.join(missing)}.",
                "Re-create the bundle with `tether optimize`.",
                path=where,
            )
        evidence = cls(**{k: v for k, v in data.items() if k in known})
        if evidence.graph is None and evidence.build.get("autocast") not in AUTOCAST_DTYPES:
            raise BundleError(
                f"{where}: the optimized evidence names neither a graph nor an autocast dtype "
                f"({', '.join(AUTOCAST_DTYPES)}).",
                "Re-create the bundle with `tether optimize`.",
                path=where,
            )
        return evidence


# -- reference outputs ----------------------------------------------------------------------


@dataclass
class Reference:
    """Stored texts with the original model's and the optimised graph's task outputs."""

    texts: list[str]
    expected: Any  # (texts, dim) float32: the original model, through the engine
    optimized: Any  # (texts, dim) float32: the optimised graph at verification time


def save_reference(reference: Reference, path: Path) -> None:
    from safetensors.numpy import save_file

    save_file(
        {"expected": reference.expected, "optimized": reference.optimized},
        str(path),
        metadata={"format": EVIDENCE_FORMAT, "texts": json.dumps(reference.texts)},
    )


def load_reference(path: Path) -> Reference:
    from safetensors import safe_open
    from safetensors.numpy import load_file

    with safe_open(str(path), framework="np") as handle:
        metadata = handle.metadata() or {}
    tensors = load_file(str(path))
    return Reference(json.loads(metadata["texts"]), tensors["expected"], tensors["optimized"])


# -- checking vectors -------------------------------------------------------------------------


@dataclass
class VectorCheck:
    """The judge's verdict on (texts, dim) task outputs (embeddings, class scores), in the
    figures an optimised bundle's evidence records."""

    texts: int
    max_abs_diff: float
    min_cosine: float
    mean_cosine: float
    worst: int  # index of the text with the lowest cosine
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_vectors(expected: Any, actual: Any, tolerance: Tolerance) -> VectorCheck:
    """``tether.judging`` of two (texts, dim) arrays: each text's cosine, every element's
    atol + rtol."""
    from tether.judging import judge

    verdict = judge(expected, actual, tolerance, name="task outputs")
    if verdict.shape_mismatch:
        return VectorCheck(len(expected), float("inf"), -1.0, -1.0, 0, verdict.failures)
    return VectorCheck(
        texts=verdict.rows,
        max_abs_diff=verdict.max_abs,
        min_cosine=verdict.cos_min,
        mean_cosine=verdict.cos_mean,
        worst=verdict.worst or 0,
        failures=verdict.failures,
    )
