"""A model's fingerprint: its outputs on fixed probe texts, stored to be compared later.

A hash proves the files are the same bytes; only a fingerprint proves the *model* is
the same: same code path, same class, same tokenizer, same numerics. Bundles store one
beside the weights, and ``verify`` recomputes it and compares within a tolerance that
was chosen, and recorded, when the bundle was saved.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tether.bundles.probes import default_probes, given_probe_names, probe_outputs
from tether.errors import FingerprintError
from tether.judging import Verdict, elementwise_limit, judge
from tether.tolerances import Tolerance

FINGERPRINT_FORMAT = "tether-fingerprint/1"

#: Outputs wider than this (vocabulary logits) keep a fixed sample of their last axis,
#: so that a 50k-token LM head does not make the fingerprint larger than the model.
MAX_COLUMNS = 2048
_COLUMNS_SUFFIX = ".__columns__"
_INPUTS_KEY = "__probe_inputs__"
_COLUMN_SEED = 20260124


@dataclass
class Fingerprint:
    """Probe texts and the model's float32 CPU outputs on them (name -> tensor)."""

    texts: tuple[str, ...]
    outputs: dict[str, Any]
    columns: dict[str, Any] = field(default_factory=dict)  # name -> sampled column indices
    #: Probe inputs the user gave (a tensor model's batch), stored with the outputs so
    #: that verify feeds the model the very same tensors; None for generated probes.
    inputs: Any = None

    def shapes(self) -> dict[str, list[int]]:
        return {name: list(t.shape) for name, t in self.outputs.items()}


@dataclass
class OutputDiff:
    """How one output compares: its shapes, and the judge's verdict when both exist."""

    name: str
    expected_shape: list[int] | None
    actual_shape: list[int] | None
    verdict: Verdict | None  # None: missing on one side, or reshaped
    missing: str | None = None  # why there is no verdict

    @property
    def max_abs_diff(self) -> float | None:
        return self.verdict.max_abs if self.verdict else None

    @property
    def cosine(self) -> float | None:
        """The lowest cosine of any probe text (the judge's per-text rule)."""
        return self.verdict.cos_min if self.verdict else None

    @property
    def ok(self) -> bool:
        return self.verdict is not None and self.verdict.passed

    @property
    def problem(self) -> str | None:
        if self.verdict is None:
            return self.missing
        return "; ".join(self.verdict.failures) or None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expected_shape": self.expected_shape,
            "actual_shape": self.actual_shape,
            "max_abs_diff": self.max_abs_diff,
            "cosine": self.cosine,
            "ok": self.ok,
            "problem": self.problem,
            "verdict": self.verdict.to_dict() if self.verdict else None,
        }


@dataclass
class FingerprintComparison:
    """The per-output comparison of two fingerprints under one tolerance."""

    tolerance: Tolerance
    outputs: list[OutputDiff]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(o.ok for o in self.outputs)

    @property
    def max_abs_diff(self) -> float | None:
        diffs = [o.max_abs_diff for o in self.outputs if o.max_abs_diff is not None]
        return max(diffs) if diffs else None

    @property
    def min_cosine(self) -> float | None:
        """The lowest per-text cosine over every output."""
        cosines = [o.cosine for o in self.outputs if o.cosine is not None]
        return min(cosines) if cosines else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tolerance": asdict(self.tolerance),
            "max_abs_diff": self.max_abs_diff,
            "min_cosine": self.min_cosine,
            "outputs": [o.to_dict() for o in self.outputs],
            "problems": list(self.problems),
        }


def compute_fingerprint(
    loaded: Any, texts: Sequence[str] | None = None, inputs: Any = None
) -> Fingerprint:
    """Run ``loaded`` (a LoadedModel) on the probe texts and keep a compact copy.

    ``inputs``: a batch of probe tensors of your own for a tensor model (one probe per
    row), used instead of the generated ones and stored in the fingerprint.
    """
    if inputs is not None:
        texts = given_probe_names(len(inputs))
    texts = tuple(texts or default_probes(loaded))
    outputs = probe_outputs(loaded, texts, inputs=inputs)
    columns: dict[str, Any] = {}
    for name, tensor in list(outputs.items()):
        if name != "attention_mask" and tensor.dim() >= 2 and tensor.shape[-1] > MAX_COLUMNS:
            columns[name] = sample_columns(tensor.shape[-1])
            outputs[name] = tensor.index_select(-1, columns[name]).contiguous()
    return Fingerprint(texts, outputs, columns, inputs)


def sample_columns(width: int) -> Any:
    """A fixed, sorted sample of ``MAX_COLUMNS`` indices of a ``width``-wide last axis."""
    import torch

    generator = torch.Generator().manual_seed(_COLUMN_SEED + width)
    return torch.randperm(width, generator=generator)[:MAX_COLUMNS].sort().values


def save_fingerprint(fingerprint: Fingerprint, path: str | Path) -> Path:
    """Write the fingerprint as one safetensors file; texts go in its metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = dict(fingerprint.outputs)
    for name, index in fingerprint.columns.items():
        tensors[name + _COLUMNS_SUFFIX] = index
    if fingerprint.inputs is not None:
        tensors[_INPUTS_KEY] = fingerprint.inputs.detach().cpu().contiguous()
    metadata = {"format": FINGERPRINT_FORMAT, "texts": json.dumps(list(fingerprint.texts))}
    save_file(tensors, str(path), metadata=metadata)
    return path


def load_fingerprint(path: str | Path) -> Fingerprint:
    """Read a fingerprint file written by ``save_fingerprint``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FingerprintError(
            f"Fingerprint file {str(path)!r} does not exist.",
            "Re-save the bundle with `tether save`, which writes a fresh fingerprint.",
        )
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise FingerprintError(
            f"Fingerprint file {str(path)!r} is unreadable ({type(exc).__name__}: {exc}).",
            "Re-save the bundle from the original model with `tether save`.",
        ) from exc
    if metadata.get("format") != FINGERPRINT_FORMAT:
        raise FingerprintError(
            f"{str(path)!r} is not a tether fingerprint (format {metadata.get('format')!r}).",
            "Re-save the bundle with this version of tether.",
        )
    inputs = tensors.pop(_INPUTS_KEY, None)
    columns = {
        key[: -len(_COLUMNS_SUFFIX)]: value
        for key, value in tensors.items()
        if key.endswith(_COLUMNS_SUFFIX)
    }
    outputs = {k: v for k, v in tensors.items() if not k.endswith(_COLUMNS_SUFFIX)}
    return Fingerprint(tuple(json.loads(metadata["texts"])), outputs, columns, inputs)


def recompute_like(loaded: Any, expected: Fingerprint) -> Fingerprint:
    """Recompute ``loaded``'s fingerprint on the same texts and column samples as ``expected``."""
    outputs = probe_outputs(loaded, expected.texts, inputs=expected.inputs)
    for name, index in expected.columns.items():
        if name in outputs and outputs[name].shape[-1] > int(index.max()):
            outputs[name] = outputs[name].index_select(-1, index).contiguous()
    return Fingerprint(expected.texts, outputs, dict(expected.columns), expected.inputs)


def compare_fingerprints(
    expected: Fingerprint, actual: Fingerprint, tolerance: Tolerance
) -> FingerprintComparison:
    """Compare output by output; a missing, extra or reshaped output is a failure."""
    problems: list[str] = []
    if expected.texts != actual.texts:
        problems.append("the probe texts differ, so the outputs are not comparable")
    diffs: list[OutputDiff] = []
    for name in sorted(set(expected.outputs) | set(actual.outputs)):
        diffs.append(
            _compare_one(name, expected.outputs.get(name), actual.outputs.get(name), tolerance)
        )
    return FingerprintComparison(tolerance, diffs, problems)


def _compare_one(name: str, expected: Any, actual: Any, tolerance: Tolerance) -> OutputDiff:
    exp_shape = list(expected.shape) if expected is not None else None
    act_shape = list(actual.shape) if actual is not None else None
    if expected is None or actual is None:
        where = "the saved fingerprint" if expected is None else "the reloaded model's outputs"
        return OutputDiff(name, exp_shape, act_shape, None, f"missing from {where}")
    if exp_shape != act_shape:
        return OutputDiff(name, exp_shape, act_shape, None, f"shape {exp_shape} -> {act_shape}")
    # rows are the probe texts: each text's outputs judged on their own
    return OutputDiff(name, exp_shape, act_shape, judge(expected, actual, tolerance, name=name))


def format_comparison(comparison: FingerprintComparison) -> str:
    """One line per output: name, shape, max abs diff, cosine, verdict."""
    tolerance = comparison.tolerance
    limits = [elementwise_limit(tolerance)] if tolerance.elementwise else []
    if tolerance.min_cosine is not None:
        limits.append(f"min cosine per text {tolerance.min_cosine}")
    lines = [f"fingerprint ({', '.join(limits) or 'no checks'}):"]
    for o in comparison.outputs:
        verdict = "ok" if o.ok else f"DIFFERS: {o.problem}"
        numbers = (
            f"max abs diff {o.max_abs_diff:.3g}, cosine min {o.cosine:.8f}"
            if o.max_abs_diff is not None and o.cosine is not None
            else "not comparable"
        )
        lines.append(f"  {o.name:<20} {o.expected_shape!s:<16} {numbers}  {verdict}")
    lines.extend(f"  problem: {p}" for p in comparison.problems)
    return "\n".join(lines)
