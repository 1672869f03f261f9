"""Tolerances: when two runs' outputs count as "the same".

One type serves both users of the idea: a bundle's fingerprint (is the reloaded model
the saved one?) and a parity comparison (is B still A?). Elementwise checks follow
``torch.testing.assert_close``: an element passes when ``|a - b| <= atol + rtol * |a|``
(A is the reference). A tolerance may also ask for a minimum cosine similarity per
example, which is how embedding users judge a change, and a minimum nearest-neighbour
overlap. Each preset documents where its numbers come from, so a CI gate can cite it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tether.errors import ParityError


@dataclass(frozen=True)
class Tolerance:
    """Thresholds a comparison must meet. ``None`` switches a check off.

    The first two fields are the ones a fingerprint needs, so ``Tolerance(1e-4, 0.9999)``
    reads as "max abs diff 1e-4, min cosine 0.9999".
    """

    atol: float | None = None
    min_cosine: float | None = None
    rtol: float | None = None
    min_topk: float | None = None
    name: str = "custom"
    source: str = ""

    @property
    def elementwise(self) -> bool:
        """Whether elementwise closeness (atol/rtol) is checked at all."""
        return self.atol is not None or self.rtol is not None

    @classmethod
    def for_dtype(cls, dtype: str) -> Tolerance:
        """The preset a model loaded in ``dtype`` is judged by (bundles, parity)."""
        if dtype == "float32":
            return PRESETS["reload"]
        return PRESETS[DTYPE_PRESETS.get(dtype, "fp16")]  # "auto" may pick half precision

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


#: The former name of :class:`Tolerance` (parity and fingerprints had one type each).
ParityTolerance = Tolerance

_HALF_PRECISION = (
    "because half-precision rounding accumulates over a whole network, not one op "
    "(all-MiniLM-L6-v2 in fp16 drifts 6.6e-3 on hidden states at embedding cosine 0.999999)"
)

PRESETS: dict[str, Tolerance] = {
    "fp32": Tolerance(
        name="fp32",
        atol=1e-5,
        rtol=1.3e-6,
        source="torch.testing.assert_close defaults for float32 (atol 1e-5, rtol 1.3e-6): "
        "two fp32 runs of the same model on the same inputs.",
    ),
    "reload": Tolerance(
        name="reload",
        atol=1e-4,
        min_cosine=0.9999,
        source="A float32 bundle reloaded elsewhere: the same machine reproduces it bit for "
        "bit, but another CPU (other SIMD width) or a GPU reorders sums, which moves "
        "outputs by up to ~1e-5 per layer.",
    ),
    "fp16": Tolerance(
        name="fp16",
        atol=1e-2,
        rtol=1e-3,
        min_cosine=0.999,
        source="torch.testing's float16 rtol (1e-3), with atol raised from 1e-5 to 1e-2 "
        + _HALF_PRECISION
        + "; cosine 0.999 ~ 10 bits of mantissa kept through the model.",
    ),
    "bf16": Tolerance(
        name="bf16",
        atol=5e-2,
        rtol=1.6e-2,
        min_cosine=0.99,
        source="torch.testing's bfloat16 rtol (1.6e-2 = 2^-6, bfloat16 keeps 8 bits of "
        "mantissa), with atol raised to 5e-2 for the same reason as fp16.",
    ),
    "int8": Tolerance(
        name="int8",
        min_cosine=0.99,
        source="Elementwise closeness is meaningless after int8 quantization; embedding "
        "quantization reports commonly accept a change when every example keeps cosine "
        ">= 0.99 to its fp32 embedding (the minimum over examples, not the mean).",
    ),
}

#: Which preset a built-in transform is judged by when the user names none.
TRANSFORM_PRESETS = {"fp16": "fp16", "bf16": "bf16", "int8": "int8", "onnx": "fp32"}
#: Which preset a model loaded in a lower dtype is judged by when the user names none
#: (a parity B in float32 is judged by fp32; a float32 bundle's fingerprint by reload).
DTYPE_PRESETS = {"float16": "fp16", "bfloat16": "bf16"}


def get_tolerance(
    preset: str | None = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    min_cosine: float | None = None,
    min_topk: float | None = None,
) -> Tolerance:
    """A preset (default ``fp32``) with any explicitly given thresholds overriding it."""
    name = preset or "fp32"
    if name not in PRESETS:
        raise ParityError(
            f"Unknown tolerance preset {name!r}.",
            f"Use one of: {', '.join(PRESETS)}, or give atol=, rtol=, min_cosine= directly.",
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


#: What an optimised model (``tether.optimize``) must keep, per level. Elementwise limits
#: apply to every final output (last hidden state, logits); the cosine to every text's
#: embedding (or output, for heads) on every probe and user text: a minimum, not a mean.
OPTIMIZE_LEVELS: dict[str, Tolerance] = {
    "exact": Tolerance(
        name="exact",
        atol=1e-4,
        min_cosine=0.9999,
        source="The float32 reload tolerance: fused kernels reorder sums the way another "
        "CPU does, and nothing more.",
    ),
    "bf16": Tolerance(
        name="bf16",
        min_cosine=0.999,
        source="bfloat16 compute keeps 8 bits of mantissa; 0.999 per text keeps the "
        "embedding's neighbours.",
    ),
    "int8": Tolerance(
        name="int8",
        min_cosine=0.99,
        source=PRESETS["int8"].source,
    ),
}
#: An int8 text must give the same vector alone as inside a batch of other texts
#: (dynamic activation scales are computed over a whole padded batch).
BATCH_INVARIANCE_COSINE = 0.999
