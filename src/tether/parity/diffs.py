"""Streaming difference statistics between a reference tensor and a candidate tensor.

Parity runs over thousands of texts and dozens of modules, so nothing is kept per
element: each batch updates running maxima, sums and per-example cosines, then the
tensors are dropped. Padding positions are masked out so only real tokens count.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from tether.tolerances import Tolerance


@dataclass
class TensorDiff:
    """How far candidate B is from reference A for one named tensor, over all examples."""

    name: str
    shape: list[int]  # per example (batch dim dropped), from the last batch
    max_abs: float
    mean_abs: float
    max_rel: float | None  # over elements where A is non-zero; None when not tracked
    cos_min: float
    cos_mean: float
    mismatched: int  # elements outside atol + rtol * |a| (0 when not checked)
    compared: int  # elements compared (padding excluded)
    examples: int
    shape_mismatch: str | None = None
    type_a: str | None = None
    type_b: str | None = None
    max_ref: float = 0.0  # largest |A| seen: the magnitude float32 rounding scales with

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

    def within(self, tol: Tolerance, *, cosine: bool = True) -> bool:
        """Whether this tensor meets ``tol`` (elementwise, and cosine when asked)."""
        if self.shape_mismatch:
            return False
        if tol.elementwise and self.mismatched:
            return False
        return not (cosine and tol.min_cosine is not None and self.cos_min < tol.min_cosine)

    def to_dict(self) -> dict[str, Any]:
        out = {k: _json_float(v) for k, v in asdict(self).items()}
        out["ulps"], out["level"] = _json_float(self.ulps), self.level
        return out


#: How many float32 ulps (at a tensor's largest magnitude) still read as rounding. Two
#: correct float32 implementations differ by the order of their sums (matmul blocking,
#: fused kernels, XLA vs oneDNN): each sum of K terms may move by a few ulps of its
#: largest partial sum, and a layer chains a handful of them; the exact Flax port of a
#: tiny Llama stays within 5 (docs/parity.md), a one-op bug lands orders of magnitude above.
ROUNDING_ULPS = 64.0


def float32_ulp(magnitude: float) -> float:
    """The spacing of float32 numbers at ``magnitude`` (2**-23 relative, 2**-149 at least)."""
    if magnitude <= 0:
        return 2.0**-149
    return max(2.0 ** (math.floor(math.log2(magnitude)) - 23), 2.0**-149)


def _json_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


@dataclass
class DiffStats:
    """Accumulates a TensorDiff batch by batch."""

    name: str
    tol: Tolerance
    shape: list[int] = field(default_factory=list)
    max_abs: float = 0.0
    sum_abs: float = 0.0
    max_rel: float = 0.0
    mismatched: int = 0
    compared: int = 0
    cos_sum: float = 0.0
    cos_min: float = 1.0
    examples: int = 0
    shape_mismatch: str | None = None
    max_ref: float = 0.0
    detailed: bool = True  # also track the max relative difference

    def update(self, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None) -> None:
        """Add one batch. ``mask`` (batch, seq) zeroes padding when a's leading dims match it.

        Padding is zeroed on both sides, so it adds nothing to any statistic; only the
        element count needs the mask. This runs for every module of every batch, so it
        makes few passes over the data and computes the relative difference only when
        ``detailed`` is set (final outputs).
        """
        if a.shape != b.shape:
            self.shape_mismatch = f"A {list(a.shape)} vs B {list(b.shape)}"
            return
        a = a.detach().to("cpu", torch.float32)
        b = b.detach().to("cpu", torch.float32)
        if a.dim() == 0:
            a, b = a.reshape(1), b.reshape(1)
        n_valid = a.numel()
        if mask is not None and a.dim() >= 2 and tuple(a.shape[:2]) == tuple(mask.shape):
            keep = mask.to(torch.float32).reshape(*mask.shape, *([1] * (a.dim() - 2)))
            a, b = a * keep, b * keep
            n_valid = int(mask.sum()) * (a[0, 0].numel())
        self.shape = list(a.shape[1:])
        diff = (a - b).abs_()
        if n_valid:
            self.max_abs = max(self.max_abs, float(diff.max()))
            self.max_ref = max(self.max_ref, float(a.abs().max()))
            self.sum_abs += float(diff.sum(dtype=torch.float64))
            self.compared += n_valid
            rtol = self.tol.rtol or 0.0
            abs_a = a.abs() if (self.detailed or (self.tol.elementwise and rtol)) else None
            if self.detailed and abs_a is not None:
                rel = torch.where(abs_a > 0, diff / abs_a, torch.zeros_like(diff))
                self.max_rel = max(self.max_rel, float(rel.max()))
            if self.tol.elementwise:
                atol = self.tol.atol or 0.0
                allowed = atol + rtol * abs_a if abs_a is not None and rtol else atol
                self.mismatched += int((diff > allowed).sum())
        cos = example_cosines(a, b, diff)
        self.examples += int(cos.numel())
        self.cos_sum += float(cos.sum())
        self.cos_min = min(self.cos_min, float(cos.min()))

    def result(self, type_a: str | None = None, type_b: str | None = None) -> TensorDiff:
        return TensorDiff(
            name=self.name,
            shape=self.shape,
            max_abs=self.max_abs,
            mean_abs=self.sum_abs / self.compared if self.compared else 0.0,
            max_rel=self.max_rel if self.detailed else None,
            cos_min=self.cos_min if self.examples else 1.0,
            cos_mean=self.cos_sum / self.examples if self.examples else 1.0,
            mismatched=self.mismatched,
            compared=self.compared,
            examples=self.examples,
            shape_mismatch=self.shape_mismatch,
            type_a=type_a,
            type_b=type_b,
            max_ref=self.max_ref,
        )


def example_cosines(
    a: torch.Tensor, b: torch.Tensor, diff: torch.Tensor | None = None
) -> torch.Tensor:
    """Cosine similarity per example (first dim), over all other elements flattened.

    Identical examples (all-zero ones included) give exactly 1.0; one zero and one not, 0.0.
    """
    a2 = a.reshape(a.shape[0], -1)
    b2 = b.reshape(b.shape[0], -1)
    dot = torch.bmm(a2.unsqueeze(1), b2.unsqueeze(2)).reshape(-1).double()
    na = torch.linalg.vector_norm(a2, dim=1).double()
    nb = torch.linalg.vector_norm(b2, dim=1).double()
    cos = dot / (na * nb).clamp_min(1e-300)
    d = (a2 - b2).abs() if diff is None else diff.reshape(a2.shape)
    same = d.amax(dim=1) == 0  # exactly 1.0, not 0.99999994, for identical rows
    return torch.where(same, torch.ones_like(cos), cos).clamp(-1.0, 1.0)
