"""Tolerances for parity checks: when two models' outputs count as "the same".

Elementwise checks follow ``torch.testing.assert_close``: an element passes when
``|a - b| <= atol + rtol * |a|`` (A is the reference). A preset may also ask for a
minimum cosine similarity per example, which is how embedding users judge a change,
and a minimum nearest-neighbour overlap. Each preset documents where its numbers come
from, so a CI gate can cite it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tether.errors import ParityError


@dataclass(frozen=True)
class ParityTolerance:
    """Thresholds a comparison must meet. ``None`` switches a check off."""

    name: str
    atol: float | None
    rtol: float | None
    min_cosine: float | None = None
    min_topk: float | None = None
    source: str = ""

    @property
    def elementwise(self) -> bool:
        """Whether elementwise closeness (atol/rtol) is checked at all."""
        return self.atol is not None or self.rtol is not None

    def describe(self) -> str:
        parts = []
        if self.elementwise:
            parts.append(f"atol={self.atol or 0:g} rtol={self.rtol or 0:g}")
        if self.min_cosine is not None:
            parts.append(f"min cosine={self.min_cosine:g}")
        if self.min_topk is not None:
            parts.append(f"min top-k overlap={self.min_topk:g}")
        return f"{self.name} (" + ", ".join(parts or ["no checks"]) + ")"

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


PRESETS: dict[str, ParityTolerance] = {
    "fp32": ParityTolerance(
        "fp32",
        atol=1e-5,
        rtol=1.3e-6,
        source="torch.testing.assert_close defaults for float32 (atol 1e-5, rtol 1.3e-6): "
        "two fp32 runs of the same model on the same inputs.",
    ),
    "fp16": ParityTolerance(
        "fp16",
        atol=1e-3,
        rtol=1e-3,
        min_cosine=0.999,
        source="torch.testing's float16 rtol (1e-3), with atol raised from 1e-5 to 1e-3 "
        "because half-precision rounding accumulates over a whole network, not one op; "
        "cosine 0.999 ~ 10 bits of mantissa kept through the model.",
    ),
    "bf16": ParityTolerance(
        "bf16",
        atol=1.6e-2,
        rtol=1.6e-2,
        min_cosine=0.99,
        source="torch.testing's bfloat16 rtol (1.6e-2 = 2^-6, bfloat16 keeps 8 bits of "
        "mantissa), used for atol too for the same reason as fp16.",
    ),
    "int8": ParityTolerance(
        "int8",
        atol=None,
        rtol=None,
        min_cosine=0.99,
        source="Elementwise closeness is meaningless after int8 quantization; embedding "
        "quantization reports commonly accept a change when every example keeps cosine "
        ">= 0.99 to its fp32 embedding (the minimum over examples, not the mean).",
    ),
}

#: Which preset a built-in transform is judged by when the user names none.
TRANSFORM_PRESETS = {"fp16": "fp16", "bf16": "bf16", "int8": "int8", "onnx": "fp32"}
#: Which preset a model loaded in a lower dtype is judged by when the user names none.
DTYPE_PRESETS = {"float16": "fp16", "bfloat16": "bf16"}


def get_tolerance(
    preset: str | None = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    min_cosine: float | None = None,
    min_topk: float | None = None,
) -> ParityTolerance:
    """A preset (default ``fp32``) with any explicitly given thresholds overriding it."""
    name = preset or "fp32"
    if name not in PRESETS:
        raise ParityError(
            f"Unknown tolerance preset {name!r}.",
            f"Use one of: {', '.join(PRESETS)}, or give --atol/--rtol/--min-cosine directly.",
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
        base, name=f"{name}+custom", source=base.source + " Overridden: " + str(changes), **changes
    )
