"""Tolerances: the thresholds under which two runs' outputs count as "the same".

One table of presets, each named by the step it guards and carrying the reason for its
numbers, so a CI gate can cite it. What the thresholds mean is fixed in one place,
``tether.judging``: ``atol``/``rtol`` are elementwise (``|a - b| <= atol + rtol * |a|``, A
the reference, as ``torch.testing.assert_close``), ``min_cosine`` is the lowest cosine of
any one row (a text's output against the reference's), and ``min_topk`` the mean overlap
of each text's nearest neighbours (parity on many texts only).

========================  =============================================================
preset                    guards
========================  =============================================================
``rerun``                 two float32 runs of one model: a re-run, a port, an export
``reload``                a float32 bundle reloaded (its fingerprint on save/verify/load)
``cast-fp16``             a model whose weights are float16 (a cast, or such a bundle)
``cast-bf16``             a model whose weights are bfloat16
``optimize-exact``        ``tether optimize --level exact`` (fused float32 graph)
``optimize-bf16``         ``tether optimize --level bf16`` (bfloat16 autocast)
``optimize-int8``         ``tether optimize --level int8`` (the int8 graph tether ships)
``batch-invariance``      a text alone against the same text inside a batch
========================  =============================================================
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tether.errors import ParityError


@dataclass(frozen=True)
class Tolerance:
    """Thresholds a comparison must meet (see ``tether.judging``). ``None`` switches one off.

    The first two fields are the ones a fingerprint needs, so ``Tolerance(1e-4, 0.9999)``
    reads as "max abs diff 1e-4, every text's cosine at least 0.9999". ``reason`` says
    where the numbers come from.
    """

    atol: float | None = None
    min_cosine: float | None = None
    rtol: float | None = None
    min_topk: float | None = None
    name: str = "custom"
    reason: str = ""

    @property
    def elementwise(self) -> bool:
        """Whether elementwise closeness (atol/rtol) is checked at all."""
        return self.atol is not None or self.rtol is not None

    @classmethod
    def for_dtype(cls, dtype: str) -> Tolerance:
        """The preset a model loaded in ``dtype`` is judged by (bundles, parity)."""
        if dtype == "float32":
            return PRESETS["reload"]
        return PRESETS[DTYPE_PRESETS.get(dtype, "cast-fp16")]  # "auto" may pick half precision

    @classmethod
    def from_dict(cls, data: dict[str, Any], default_name: str = "custom") -> Tolerance:
        """A tolerance stored in a manifest or evidence (any tether version: the reason
        was once called ``source``); only the thresholds and the name are read."""

        def limit(key: str) -> float | None:
            return None if data.get(key) is None else float(data[key])

        return cls(
            atol=limit("atol"),
            min_cosine=limit("min_cosine"),
            rtol=limit("rtol"),
            min_topk=limit("min_topk"),
            name=str(data.get("name") or default_name),
            reason=str(data.get("reason") or data.get("source") or ""),
        )

    def describe(self) -> str:
        parts = []
        if self.elementwise:
            parts.append(f"atol={self.atol or 0:g} rtol={self.rtol or 0:g}")
        if self.min_cosine is not None:
            parts.append(f"min cosine per text={self.min_cosine:g}")
        if self.min_topk is not None:
            parts.append(f"min top-k overlap={self.min_topk:g}")
        return f"{self.name} (" + ", ".join(parts or ["no checks"]) + ")"

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


_HALF_PRECISION = (
    "because half-precision rounding accumulates over a whole network, not one op "
    "(all-MiniLM-L6-v2 in fp16 drifts 6.6e-3 on hidden states at embedding cosine 0.999999)"
)
_INT8 = (
    "Elementwise closeness is meaningless after int8 quantization; embedding "
    "quantization reports commonly accept a change when every example keeps cosine "
    ">= 0.99 to its fp32 embedding (the minimum over examples, not the mean)."
)

#: Every preset, named by the step it guards.
PRESETS: dict[str, Tolerance] = {
    "rerun": Tolerance(
        name="rerun",
        atol=1e-5,
        rtol=1.3e-6,
        reason="torch.testing.assert_close defaults for float32 (atol 1e-5, rtol 1.3e-6): "
        "two float32 runs of the same model on the same inputs (a re-run, a port, an "
        "unfused export).",
    ),
    "reload": Tolerance(
        name="reload",
        atol=1e-4,
        min_cosine=0.9999,
        reason="A float32 bundle reloaded elsewhere: the same machine reproduces it bit for "
        "bit, but another CPU (other SIMD width) or a GPU reorders sums, which moves "
        "outputs by up to ~1e-5 per layer.",
    ),
    "cast-fp16": Tolerance(
        name="cast-fp16",
        atol=1e-2,
        rtol=1e-3,
        min_cosine=0.999,
        reason="torch.testing's float16 rtol (1e-3), with atol raised from 1e-5 to 1e-2 "
        + _HALF_PRECISION
        + "; cosine 0.999 ~ 10 bits of mantissa kept through the model.",
    ),
    "cast-bf16": Tolerance(
        name="cast-bf16",
        atol=5e-2,
        rtol=1.6e-2,
        min_cosine=0.99,
        reason="torch.testing's bfloat16 rtol (1.6e-2 = 2^-6, bfloat16 keeps 8 bits of "
        "mantissa), with atol raised to 5e-2 for the same reason as cast-fp16; every "
        "weight and activation is rounded to bfloat16.",
    ),
    "optimize-exact": Tolerance(
        name="optimize-exact",
        atol=1e-4,
        min_cosine=0.9999,
        reason="The float32 reload tolerance: fused kernels reorder sums the way another "
        "CPU does, and nothing more.",
    ),
    "optimize-bf16": Tolerance(
        name="optimize-bf16",
        min_cosine=0.999,
        reason="bfloat16 autocast keeps float32 weights, layer norms and softmax and rounds "
        "only the matmul inputs to 8 bits of mantissa: 0.999 per text keeps the "
        "embedding's neighbours (tighter than cast-bf16, which rounds everything).",
    ),
    "optimize-int8": Tolerance(name="optimize-int8", min_cosine=0.99, reason=_INT8),
    "batch-invariance": Tolerance(
        name="batch-invariance",
        min_cosine=0.999,
        reason="A text must give the same vector alone as inside a batch of other texts "
        "(dynamic activation scales computed over a padded batch would mix texts).",
    ),
}

#: ``tether optimize`` level -> the preset its result is verified by.
OPTIMIZE_LEVELS: dict[str, Tolerance] = {
    level: PRESETS[f"optimize-{level}"] for level in ("exact", "bf16", "int8")
}
#: Which preset a ``tether compare`` transform is judged by when the user names none:
#: the optimiser's levels by their ``optimize-*`` preset, weight casts by ``cast-*``.
TRANSFORM_PRESETS = {
    **{level: f"optimize-{level}" for level in OPTIMIZE_LEVELS},
    "cast-fp16": "cast-fp16",
    "cast-bf16": "cast-bf16",
}
#: Which preset a model loaded in a lower dtype is judged by when the user names none
#: (a parity B in float32 is judged by rerun; a float32 bundle's fingerprint by reload).
DTYPE_PRESETS = {"float16": "cast-fp16", "bfloat16": "cast-bf16"}
#: Names of tether 0.1's presets, for the refusal's hint only (they are not accepted).
RENAMED = {
    "fp32": "rerun",
    "fp16": "cast-fp16",
    "bf16": "cast-bf16 (a weight cast) or optimize-bf16 (autocast)",
    "int8": "optimize-int8",
}


def get_tolerance(
    preset: str | None = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    min_cosine: float | None = None,
    min_topk: float | None = None,
) -> Tolerance:
    """A preset (default ``rerun``) with any explicitly given thresholds overriding it."""
    name = preset or "rerun"
    if name not in PRESETS:
        renamed = f" Preset {name!r} is now {RENAMED[name]}." if name in RENAMED else ""
        raise ParityError(
            f"Unknown tolerance preset {name!r}.{renamed}",
            f"Use tolerance= one of: {', '.join(PRESETS)}, or give atol=, rtol=, "
            "min_cosine= directly.",
        )
    base = PRESETS[name]
    changes = {
        k: v
        for k, v in {
            "atol": atol,
            "rtol": rtol,
            "min_cosine": min_cosine,
            "min_topk": min_topk,
        }.items()
        if v is not None
    }
    for key, value in changes.items():
        if value < 0 or (key in ("min_cosine", "min_topk") and value > 1):
            raise ParityError(
                f"Tolerance {key}={value} is out of range.",
                "atol/rtol must be >= 0; min cosine and min top-k overlap lie in [0, 1].",
            )
    if not changes:
        return base
    if ("atol" in changes) != ("rtol" in changes) and not base.elementwise:
        changes.setdefault("atol", 0.0)
        changes.setdefault("rtol", 0.0)
    return dataclasses.replace(
        base, name=f"{name}+custom", reason=base.reason + " Overridden: " + str(changes), **changes
    )
