"""One pair of outputs, one verdict: a bundle's fingerprint check, an optimised bundle's
verification and the parity tool judge the same pairs alike (``tether.judging``).

Before the judge, three rules disagreed: the fingerprint took one cosine over the whole
flattened tensor (a drifting text, or a small row gone wrong, passed), the optimised
checks ignored ``rtol`` (a change within atol + rtol * |a| failed), and parity had its
own per-text rule. The cases below are those disagreements.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from tether import ModelSpec, compare, load
from tether.bundles.fingerprint import Fingerprint, compare_fingerprints
from tether.bundles.optimized import check_vectors
from tether.parity.candidates import Candidate
from tether.tolerances import PRESETS, Tolerance

N, DIM = 40, 8
TEXTS = ["a " * i + "b" for i in range(N)]  # each tokenizes uniquely, untruncated


def _base() -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    return torch.randn(N, DIM, generator=generator) + 0.5


def _drifting_text() -> torch.Tensor:
    """Text 11 turns by about 8 degrees (cosine 0.99); the other 39 stay exact."""
    actual = _base().clone()
    row = actual[11]
    other = torch.roll(row, 1)
    other = other - (other @ row) / (row @ row) * row  # orthogonal to the row
    actual[11] = row + 0.142 * row.norm() / other.norm() * other
    return actual


def _small_row_reversed() -> torch.Tensor:
    """Text 23 is a hundred times smaller than the rest and flipped: the whole tensor's
    cosine barely moves, that text's is -1."""
    expected = _base()
    expected[23] *= 0.01
    actual = expected.clone()
    actual[23] = -actual[23]
    return torch.stack([expected, actual])


@dataclass
class Case:
    name: str
    expected: torch.Tensor
    actual: torch.Tensor
    tolerance: Tolerance
    passes: bool
    worst: int | None = None


def _cases() -> list[Case]:
    base = _base()
    small = _small_row_reversed()
    return [
        Case("identical", base, base.clone(), PRESETS["rerun"], True),
        Case(
            "float32 rounding",
            base,
            torch.nextafter(base, torch.full_like(base, 1e9)),
            PRESETS["reload"],
            True,
        ),
        Case(
            "one text drifting, the mean fine",
            base,
            _drifting_text(),
            Tolerance(min_cosine=0.995, name="per-text"),
            False,
            worst=11,
        ),
        Case(
            "the whole tensor fine, one row off",
            small[0],
            small[1],
            Tolerance(atol=1.0, min_cosine=0.99, name="per-text"),
            False,
            worst=23,
        ),
        Case(
            "rtol-only differences",
            base,
            base * 1.004,
            Tolerance(atol=0.0, rtol=5e-3, name="rtol"),
            True,
        ),
        Case(
            "rtol exceeded",
            base,
            base * 1.006,
            Tolerance(atol=0.0, rtol=5e-3, name="rtol"),
            False,
        ),
    ]


CASES = _cases()


@pytest.fixture(scope="module")
def tokenizer(tiny):
    return load(ModelSpec(str(tiny["bert"]), model_class="AutoModel")).tokenizer


def _side(label: str, outputs: torch.Tensor, tokenizer) -> Candidate:
    """A parity side that returns each text's fixed row, whatever batch it is in."""
    position = {tuple(tokenizer(text)["input_ids"]): i for i, text in enumerate(TEXTS)}

    def forward(batch):
        index = [
            position[tuple(ids[mask.bool()].tolist())]
            for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)
        ]
        return {"logits": outputs[index]}

    return Candidate(label=label, kind="callable", forward=forward, tokenizer=tokenizer)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fingerprint_optimised_verification_and_parity_give_one_verdict(case, tokenizer):
    fingerprint = compare_fingerprints(
        Fingerprint(tuple(TEXTS), {"logits": case.expected}),
        Fingerprint(tuple(TEXTS), {"logits": case.actual}),
        case.tolerance,
    )
    optimised = check_vectors(case.expected.numpy(), case.actual.numpy(), case.tolerance)
    parity = compare(
        _side("A", case.expected, tokenizer),
        _side("B", case.actual, tokenizer),
        texts=TEXTS,
        tolerance=case.tolerance,
        layers=False,
    )
    assert fingerprint.ok is optimised.passed is parity.passed is case.passes
    # and the figures are the same figures
    [out] = parity.outputs
    assert fingerprint.min_cosine == pytest.approx(optimised.min_cosine, abs=1e-12)
    assert out.cos_min == pytest.approx(optimised.min_cosine, abs=1e-12)
    assert fingerprint.max_abs_diff == optimised.max_abs_diff == out.max_abs
    if case.worst is not None:
        assert optimised.worst == out.worst == case.worst
        assert f"(text {case.worst})" in "; ".join(parity.failures)
