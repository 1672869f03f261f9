"""The one judge of "the same": ``judge(expected, actual, tolerance) -> Verdict``.

Every check tether makes calls it: a bundle's fingerprint on save, verify and load, an
optimised bundle's verification and its re-verification on another machine, the parity
tool's final outputs, embeddings and layers, and port comparisons. So one pair of outputs
gets one verdict wherever it is judged.

The rule, for an expected tensor A (the reference) and an actual tensor B of one shape:

* **Rows are texts.** The first axis is the example (a probe text, a user text, one row
  of a tensor model's batch); each row is flattened, and its cosine with A's row is one
  figure. ``min_cosine`` is the minimum over rows, never a cosine of the whole flattened
  tensor, which one drifting text cannot move (a fine mean hides a broken row).
* **Elementwise**, as ``torch.testing.assert_close``: an element passes when
  ``|a - b| <= atol + rtol * |a|``; every element counts (``violations``).
* Padding positions (a ``mask`` over the first two axes) are left out of both.

What stays whole-tensor and why: the maximum and mean absolute difference and the ulps
figure describe how far apart the numbers are anywhere in the tensor, and elementwise
violations are counted over all elements; they are magnitudes, not per-text verdicts.

The judge streams: ``Judge.update`` takes a batch at a time (parity runs thousands of
texts through dozens of modules), keeps maxima, sums and per-row cosines, and drops the
tensors. ``judge()`` is the one-shot form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from tether.tolerances import Tolerance

#: How many float32 ulps (at a tensor's largest magnitude) still read as rounding. Two
#: correct float32 implementations differ by the order of their sums (matmul blocking,
#: fused kernels, XLA vs oneDNN): each sum of K terms may move by a few ulps of its
#: largest partial sum, and a layer chains a handful of them; the exact Flax port of a
#: tiny Llama stays within 5 (docs/parity.md), a one-op bug lands orders of magnitude above.
ROUNDING_ULPS = 64.0


@dataclass
class Verdict:
    """How far ``actual`` is from ``expected`` for one named output, and whether it passes.

    ``failures`` says why not (empty: passed); its parts are ``elementwise_failures``
    (shape, atol/rtol) and ``cosine_failures`` (per-row cosine), so a report may judge a
    tensor elementwise only (parity's hidden states when a pooled embedding carries the
    cosine rule).
    """

    name: str
    tolerance: Tolerance
    shape: list[int]  # per row (first axis dropped), from the last batch
    rows: int  # rows judged: texts
    compared: int  # elements compared (padding excluded)
    max_abs: float
    mean_abs: float
    max_rel: float | None  # over elements where A is non-zero; None when not tracked
    violations: int  # elements outside atol + rtol * |a| (0 without an elementwise limit)
    cos_min: float  # the lowest per-row cosine
    cos_mean: float
    worst: int | None  # the row (text index) with the lowest cosine
    max_ref: float = 0.0  # largest |A| seen: the magnitude float32 rounding scales with
    shape_mismatch: str | None = None
    type_a: str | None = None
    type_b: str | None = None

    @property
    def ulps(self) -> float:
        """Max abs diff in float32 ulps at the tensor's largest magnitude (0 when exact)."""
        if self.max_abs == 0:
            return 0.0
        if self.max_ref <= 0 or not math.isfinite(self.max_ref):
            return math.inf
        return self.max_abs / float32_ulp(self.max_ref)

    @property
    def level(self) -> str:
        """``exact``, ``rounding`` (within ROUNDING_ULPS of float32 rounding) or ``beyond``."""
        if self.shape_mismatch:
            return "beyond"
        if self.max_abs == 0:
            return "exact"
        return "rounding" if self.ulps <= ROUNDING_ULPS else "beyond"

    @property
    def elementwise_failures(self) -> list[str]:
        """Shape and atol/rtol failures (empty when they pass)."""
        tol = self.tolerance
        if self.shape_mismatch:
            return [f"shapes differ ({self.shape_mismatch})"]
        if tol.elementwise and self.violations:
            return [
                f"{self.violations:,} of {self.compared:,} elements differ by more than "
                f"{elementwise_limit(tol)} (max abs diff {self.max_abs:.3g})"
            ]
        return []

    @property
    def cosine_failures(self) -> list[str]:
        """The per-row cosine failure (empty when it passes or is not asked for)."""
        limit = self.tolerance.min_cosine
        if self.shape_mismatch or limit is None or self.cos_min >= limit:
            return []
        return [f"cosine min {self.cos_min:.6f} < {limit:g} (text {self.worst})"]

    @property
    def failures(self) -> list[str]:
        return self.elementwise_failures + self.cosine_failures

    @property
    def passed(self) -> bool:
        return not self.failures

    def passes(self, *, cosine: bool = True) -> bool:
        """Whether it passes, elementwise only when ``cosine`` is False."""
        return not (self.elementwise_failures or (cosine and self.cosine_failures))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (the tolerance by name; infinities as strings)."""
        out = {k: _json_float(v) for k, v in asdict(self).items()}
        out["tolerance"] = self.tolerance.name
        out["ulps"], out["level"] = _json_float(self.ulps), self.level
        out["passed"], out["failures"] = self.passed, self.failures
        return out


def elementwise_limit(tolerance: Tolerance) -> str:
    """``atol 0.0001`` or ``atol 0.05 + rtol 0.016 x |expected|``."""
    limit = f"atol {tolerance.atol or 0.0:g}"
    return limit + (f" + rtol {tolerance.rtol:g} x |expected|" if tolerance.rtol else "")


@dataclass
class Judge:
    """Builds a Verdict batch by batch (``update``), for outputs too large to hold."""

    name: str
    tolerance: Tolerance
    #: Also track the max relative difference (a pass more per batch: final outputs only).
    detailed: bool = True
    shape: list[int] = field(default_factory=list)
    max_abs: float = 0.0
    sum_abs: float = 0.0
    max_rel: float = 0.0
    violations: int = 0
    compared: int = 0
    cos_sum: float = 0.0
    cos_min: float = 1.0
    worst: int | None = None
    rows: int = 0
    max_ref: float = 0.0
    shape_mismatch: str | None = None

    def update(
        self,
        expected: Any,
        actual: Any,
        mask: Any = None,
        rows: Sequence[int] | None = None,
    ) -> None:
        """Add one batch (its first axis: rows). ``mask`` (rows, tokens) leaves padding
        out when the tensors' first two axes match it; ``rows`` names each row's index
        among all texts (default: counting on from the previous batch)."""
        a = _float32(expected)
        b = _float32(actual)
        if a.shape != b.shape:
            self.shape_mismatch = f"expected {list(a.shape)} vs actual {list(b.shape)}"
            return
        if a.dim() == 0:
            a, b = a.reshape(1), b.reshape(1)
        n_valid = a.numel()
        if mask is not None and a.dim() >= 2 and tuple(a.shape[:2]) == tuple(mask.shape):
            mask = torch.as_tensor(mask)
            keep = mask.reshape(*mask.shape, *([1] * (a.dim() - 2)))
            a, b = a * keep, b * keep  # padding adds nothing to any figure
            n_valid = int(mask.sum()) * math.prod(a.shape[2:])
        self.shape = list(a.shape[1:])
        diff = (a - b).abs_()
        if n_valid:
            self.max_abs = max(self.max_abs, float(diff.max()))
            abs_a = a.abs()
            self.max_ref = max(self.max_ref, float(abs_a.max()))
            self.sum_abs += float(diff.sum(dtype=torch.float64))
            self.compared += n_valid
            if self.detailed:
                rel = torch.where(abs_a > 0, diff / abs_a, torch.zeros_like(diff))
                self.max_rel = max(self.max_rel, float(rel.max()))
            tol = self.tolerance
            if tol.elementwise:
                allowed = (tol.atol or 0.0) + (tol.rtol or 0.0) * abs_a
                self.violations += int((diff > allowed).sum())
        cosines = row_cosines(a, b)
        index = list(rows) if rows is not None else range(self.rows, self.rows + len(cosines))
        if len(cosines):
            low = int(torch.argmin(cosines))
            if self.worst is None or float(cosines[low]) < self.cos_min:
                self.worst = int(index[low])
            self.cos_min = min(self.cos_min, float(cosines[low]))
        self.rows += len(cosines)
        self.cos_sum += float(cosines.sum())

    def verdict(self, type_a: str | None = None, type_b: str | None = None) -> Verdict:
        return Verdict(
            name=self.name,
            tolerance=self.tolerance,
            shape=self.shape,
            rows=self.rows,
            compared=self.compared,
            max_abs=self.max_abs,
            mean_abs=self.sum_abs / self.compared if self.compared else 0.0,
            max_rel=self.max_rel if self.detailed else None,
            violations=self.violations,
            cos_min=self.cos_min,
            cos_mean=self.cos_sum / self.rows if self.rows else 1.0,
            worst=self.worst,
            max_ref=self.max_ref,
            shape_mismatch=self.shape_mismatch,
            type_a=type_a,
            type_b=type_b,
        )


def judge(
    expected: Any,
    actual: Any,
    tolerance: Tolerance,
    *,
    name: str = "output",
    mask: Any = None,
) -> Verdict:
    """Judge ``actual`` against ``expected`` (tensors or arrays, rows first) under
    ``tolerance``: per-row cosine, elementwise atol/rtol, figures for the report."""
    one = Judge(name, tolerance)
    one.update(expected, actual, mask)
    return one.verdict()


def row_cosines(a: torch.Tensor, b: torch.Tensor) -> Any:
    """Cosine similarity per row (first axis), over all other elements flattened, in
    float64. Identical rows (all-zero ones included) give exactly 1.0; one zero row and
    one not, 0.0."""
    if a.dim() == 0:
        a, b = a.reshape(1), b.reshape(1)
    width = math.prod(a.shape[1:])
    a2 = a.reshape(a.shape[0], width).double()
    b2 = b.reshape(b.shape[0], width).double()
    dot = (a2 * b2).sum(dim=1)
    norms = torch.linalg.vector_norm(a2, dim=1) * torch.linalg.vector_norm(b2, dim=1)
    cos = dot / norms.clamp_min(1e-300)
    same = (a2 == b2).all(dim=1)  # rows without elements are identical too
    return torch.where(same, torch.ones_like(cos), cos).clamp(-1.0, 1.0)


def float32_ulp(magnitude: float) -> float:
    """The spacing of float32 numbers at ``magnitude`` (2**-23 relative, 2**-149 at least)."""
    if magnitude <= 0:
        return 2.0**-149
    return max(2.0 ** (math.floor(math.log2(magnitude)) - 23), 2.0**-149)


def _float32(value: Any) -> torch.Tensor:
    return torch.as_tensor(value).detach().to("cpu", torch.float32)


def _json_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
