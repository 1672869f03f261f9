"""tether.judging: the one rule for "the same" (per-text cosine, elementwise atol + rtol),
its figures, its streaming form and its failure wording."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tether.judging import (
    ROUNDING_ULPS,
    Judge,
    Verdict,
    elementwise_limit,
    float32_ulp,
    judge,
    row_cosines,
)
from tether.tolerances import PRESETS, Tolerance

COSINE = Tolerance(min_cosine=0.99, name="cos")
EXACT = Tolerance(atol=0.0, min_cosine=1.0, name="exact")


def rows(*values):
    return torch.tensor(values, dtype=torch.float32)


# -- the per-text rule -----------------------------------------------------------------------


def test_identical_tensors_are_exact_with_every_figure_at_its_ideal():
    a = rows([1.0, 2.0], [3.0, -4.0])
    v = judge(a, a.clone(), EXACT, name="x")
    assert v.passed and v.failures == []
    assert (v.name, v.rows, v.compared, v.shape) == ("x", 2, 4, [2])
    assert (v.max_abs, v.mean_abs, v.max_rel, v.violations) == (0.0, 0.0, 0.0, 0)
    assert (v.cos_min, v.cos_mean, v.level, v.ulps) == (1.0, 1.0, "exact", 0.0)
    assert v.max_ref == 4.0 and v.worst == 0


def test_cosine_is_per_row_not_over_the_flattened_tensor():
    # 50 identical rows and one reversed: the whole tensor's cosine stays high,
    # the reversed text's is -1.
    a = torch.ones(51, 4)
    b = a.clone()
    b[17] = -b[17]
    whole = float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))
    assert whole > 0.92
    v = judge(a, b, COSINE)
    assert v.cos_min == pytest.approx(-1.0) and v.worst == 17
    assert v.cos_mean == pytest.approx(49 / 51)
    assert v.failures == ["cosine min -1.000000 < 0.99 (text 17)"]


def test_a_scaled_row_keeps_cosine_one_and_fails_only_elementwise():
    v = judge(rows([1.0, 1.0]), rows([2.0, 2.0]), Tolerance(atol=0.5, min_cosine=0.99))
    assert v.cos_min == pytest.approx(1.0)
    assert v.cosine_failures == []
    assert v.elementwise_failures == [
        "2 of 2 elements differ by more than atol 0.5 (max abs diff 1)"
    ]
    assert not v.passed and not v.passes() and not v.passes(cosine=False)


def test_elementwise_limit_is_atol_plus_rtol_times_the_expected_value_inclusive():
    expected = rows([10.0, 1.0])
    assert judge(expected, rows([10.5, 1.0]), Tolerance(rtol=0.05)).violations == 0
    assert judge(expected, rows([10.5, 1.0]), Tolerance(rtol=0.04)).violations == 1
    # rtol scales |expected|, not |actual|
    assert judge(rows([1.0]), rows([1.5]), Tolerance(rtol=0.4)).violations == 1
    # atol and rtol add up; both limits are inclusive
    assert judge(rows([1.0]), rows([1.5]), Tolerance(atol=0.25, rtol=0.25)).violations == 0
    assert judge(rows([1.0]), rows([1.5]), Tolerance(atol=0.25, rtol=0.2)).violations == 1
    assert judge(rows([1.0]), rows([1.5]), Tolerance(atol=0.5)).violations == 0


def test_without_elementwise_limits_nothing_counts_as_a_violation():
    v = judge(rows([1.0, 0.0]), rows([5.0, 0.0]), Tolerance(min_cosine=0.5))
    assert v.violations == 0 and v.elementwise_failures == [] and v.passed


def test_cosine_limit_is_inclusive_and_off_when_none():
    a, b = rows([1.0, 0.0]), rows([1.0, 0.1])
    cos = judge(a, b, Tolerance()).cos_min
    assert 0.99 < cos < 1.0
    assert judge(a, b, Tolerance(min_cosine=cos)).passed
    above = math.nextafter(cos, 2.0)
    assert not judge(a, b, Tolerance(min_cosine=above)).passed
    assert judge(rows([1.0]), rows([-1.0]), Tolerance()).passed  # no checks at all


def test_rows_of_zeros_compare_as_one_when_equal_and_zero_against_a_non_zero_row():
    assert judge(rows([0.0, 0.0]), rows([0.0, 0.0]), EXACT).cos_min == 1.0
    assert judge(rows([0.0, 0.0]), rows([0.0, 1.0]), Tolerance()).cos_min == 0.0
    cos = row_cosines(rows([0.0, 0.0], [1.0, 2.0]), rows([0.0, 0.0], [1.0, 2.0]))
    assert cos.tolist() == [1.0, 1.0] and cos.dtype == torch.float64


def test_opposite_rows_clamp_to_minus_one_and_close_rows_are_exactly_one():
    a = rows([1e-30, 3.0, 7.0])
    assert row_cosines(a, -a).tolist() == [pytest.approx(-1.0)]
    assert row_cosines(a, a.clone()).tolist() == [1.0]
    assert float(row_cosines(rows([3.0, 4.0]), rows([4.0, 3.0]))[0]) == pytest.approx(24 / 25)


def test_a_scalar_and_rows_without_elements_are_judged():
    scalar = judge(torch.tensor(2.0), torch.tensor(2.5), Tolerance(atol=0.1))
    assert scalar.rows == 1 and scalar.max_abs == 0.5 and scalar.violations == 1
    assert row_cosines(torch.tensor(2.0), torch.tensor(2.0)).tolist() == [1.0]
    empty = judge(torch.zeros(3, 0), torch.zeros(3, 0), EXACT)
    assert empty.passed and empty.rows == 3 and empty.compared == 0
    assert (empty.cos_min, empty.cos_mean, empty.mean_abs) == (1.0, 1.0, 0.0)
    none = judge(torch.zeros(0, 4), torch.zeros(0, 4), EXACT)
    assert none.passed and none.rows == 0 and none.worst is None
    assert (none.cos_min, none.cos_mean) == (1.0, 1.0)


def test_shape_mismatch_fails_with_both_shapes_and_no_other_failure():
    v = judge(torch.zeros(2, 3), torch.zeros(2, 4), COSINE, name="h")
    assert v.shape_mismatch == "expected [2, 3] vs actual [2, 4]"
    assert v.failures == ["shapes differ (expected [2, 3] vs actual [2, 4])"]
    assert v.cosine_failures == [] and v.level == "beyond" and not v.passes(cosine=False)


def test_numpy_arrays_and_integer_tensors_are_judged_as_float32():
    a = np.array([[1, 2], [3, 4]], dtype=np.int64)
    v = judge(a, a.astype(np.float64) + 0.5, Tolerance(atol=0.5))
    assert v.passed and v.max_abs == 0.5 and v.compared == 4


# -- figures -------------------------------------------------------------------------------


def test_figures_are_the_extremes_and_the_means():
    expected = rows([1.0, 2.0], [4.0, -8.0])
    actual = rows([1.5, 2.0], [4.0, -7.0])
    v = judge(expected, actual, Tolerance(atol=0.1))
    assert v.max_abs == 1.0 and v.mean_abs == pytest.approx(1.5 / 4)
    assert v.max_rel == pytest.approx(0.5)  # 0.5 / 1.0, larger than 1 / 8
    assert v.max_ref == 8.0 and v.violations == 2 and v.compared == 4
    assert v.cos_mean == pytest.approx(sum(row_cosines(expected, actual).tolist()) / 2)


def test_max_rel_ignores_elements_where_the_reference_is_zero():
    v = judge(rows([0.0, 2.0]), rows([5.0, 2.5]), Tolerance())
    assert v.max_rel == pytest.approx(0.25)


def test_ulps_and_level_read_float32_rounding():
    one = judge(rows([1.0]), rows([1.0 + 2**-23]), Tolerance())
    assert one.ulps == pytest.approx(1.0) and one.level == "rounding"
    at = judge(rows([1.0]), rows([1.0 + ROUNDING_ULPS * 2**-23]), Tolerance())
    assert at.ulps == pytest.approx(ROUNDING_ULPS) and at.level == "rounding"
    beyond = judge(rows([1.0]), rows([1.0 + 2 * ROUNDING_ULPS * 2**-23]), Tolerance())
    assert beyond.level == "beyond"
    # against an all-zero reference any difference is infinitely many ulps
    zero = judge(rows([0.0]), rows([1e-3]), Tolerance())
    assert zero.ulps == math.inf and zero.level == "beyond"


def test_float32_ulp_is_the_spacing_at_a_magnitude():
    assert float32_ulp(1.0) == 2**-23
    assert float32_ulp(1.5) == 2**-23
    assert float32_ulp(2.0) == 2**-22
    assert float32_ulp(0.75) == 2**-24
    assert float32_ulp(0.0) == float32_ulp(-1.0) == 2**-149
    assert float32_ulp(1e-45) == 2**-149


def test_to_dict_carries_every_figure_the_verdict_and_the_preset_name():
    v = judge(rows([1.0]), rows([math.inf]), PRESETS["reload"], name="x")
    data = v.to_dict()
    assert data["tolerance"] == "reload" and data["name"] == "x"
    assert data["max_abs"] == "inf" and data["passed"] is False
    assert data["failures"] == v.failures and data["level"] == v.level
    assert data["ulps"] == "inf"
    same = judge(rows([1.0]), rows([1.0]), PRESETS["reload"]).to_dict()
    assert same["ulps"] == 0.0 and same["passed"] is True and same["failures"] == []
    assert set(same) >= {"rows", "compared", "violations", "cos_min", "cos_mean", "worst"}


def test_elementwise_limit_wording():
    assert elementwise_limit(Tolerance(atol=1e-4)) == "atol 0.0001"
    assert elementwise_limit(Tolerance(rtol=0.01)) == "atol 0 + rtol 0.01 x |expected|"
    assert elementwise_limit(Tolerance(atol=0.5, rtol=0.1)) == ("atol 0.5 + rtol 0.1 x |expected|")


# -- streaming -------------------------------------------------------------------------------


def test_batches_stream_into_the_same_verdict_as_one_call():
    torch.manual_seed(0)
    a = torch.randn(10, 3, 4)
    b = a + 1e-3 * torch.randn(10, 3, 4)
    b[6] = -b[6]
    tol = Tolerance(atol=1e-2, rtol=1e-3, min_cosine=0.5)
    whole = judge(a, b, tol)
    one = Judge("x", tol)
    for start in (0, 4, 7):
        stop = {0: 4, 4: 7, 7: 10}[start]
        one.update(a[start:stop], b[start:stop])
    streamed = one.verdict()
    assert streamed.rows == whole.rows == 10
    assert streamed.worst == whole.worst == 6
    assert streamed.cos_min == pytest.approx(whole.cos_min)
    assert streamed.cos_mean == pytest.approx(whole.cos_mean)
    assert streamed.max_abs == whole.max_abs and streamed.violations == whole.violations
    assert streamed.mean_abs == pytest.approx(whole.mean_abs)
    assert streamed.compared == whole.compared == 120


def test_rows_name_each_rows_text_and_the_worst_is_the_lowest_seen():
    one = Judge("x", COSINE)
    one.update(rows([1.0, 0.0], [1.0, 0.0]), rows([1.0, 0.5], [1.0, 0.0]), rows=[9, 3])
    one.update(rows([1.0, 0.0]), rows([1.0, 0.2]), rows=[5])  # better than text 9
    v = one.verdict()
    assert v.worst == 9 and v.rows == 3
    one.update(rows([1.0, 0.0]), rows([0.0, 1.0]), rows=[1])  # worse
    assert one.verdict().worst == 1


def test_padding_is_left_out_of_every_figure():
    a = torch.ones(2, 3, 2)
    b = a.clone()
    b[0, 2] = 100.0  # a padding position of text 0
    b[1, 1] = -1.0  # a real token of text 1
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    v = judge(a, b, Tolerance(atol=0.1), mask=mask)
    assert v.max_abs == 2.0 and v.compared == 5 * 2 and v.violations == 2
    assert v.mean_abs == pytest.approx(4.0 / 10)
    unmasked = judge(a, b, Tolerance(atol=0.1))
    assert unmasked.max_abs == 99.0 and unmasked.compared == 12
    # a mask whose shape does not match the first two axes is not applied
    assert judge(a, b, Tolerance(atol=0.1), mask=torch.ones(2, 2)).max_abs == 99.0


def test_a_shape_mismatch_in_any_batch_sticks():
    one = Judge("x", EXACT)
    one.update(torch.zeros(1, 2), torch.zeros(1, 3))
    one.update(torch.zeros(1, 2), torch.zeros(1, 2))
    assert not one.verdict().passed and one.verdict().shape_mismatch


def test_max_rel_is_tracked_only_when_detailed():
    one = Judge("layer", Tolerance(rtol=0.1), detailed=False)
    one.update(rows([1.0, 2.0]), rows([1.5, 2.0]))
    v = one.verdict(type_a="Linear", type_b="QLinear")
    assert v.max_rel is None and v.violations == 1
    assert (v.type_a, v.type_b) == ("Linear", "QLinear")
    assert isinstance(v, Verdict)


# -- presets ----------------------------------------------------------------------------------


def test_every_preset_is_named_by_its_key_and_says_why():
    for name, tolerance in PRESETS.items():
        assert tolerance.name == name and len(tolerance.reason) > 40


def test_a_stored_tolerance_reads_back_from_any_version():
    old = {"atol": 1e-4, "min_cosine": 0.9999, "name": "exact", "source": "why"}
    back = Tolerance.from_dict(old)
    assert (back.atol, back.min_cosine, back.rtol, back.name, back.reason) == (
        1e-4,
        0.9999,
        None,
        "exact",
        "why",
    )
    assert Tolerance.from_dict({"min_cosine": 0.99}, default_name="int8").name == "int8"
    new = PRESETS["cast-bf16"]
    assert Tolerance.from_dict(new.to_dict()) == new


# -- edges a mutation run found unpinned ------------------------------------------------------


def test_the_default_name_and_float32_rounding_of_float64_inputs():
    v = judge(np.array([[1.0]]), np.array([[1.0 + 1e-12]]), EXACT)
    assert v.name == "output"
    assert v.max_abs == 0.0 and v.level == "exact" and v.passed  # judged in float32


def test_cosines_of_small_rows_are_not_floored():
    cos = row_cosines(rows([1e-3, 0.0]), rows([1e-3, 1e-3]))
    assert float(cos[0]) == pytest.approx(2**-0.5)


def test_identical_rows_read_exactly_one_beside_others_that_differ():
    x = [-4.821664810180664, 0.22549442946910858, -1.9013172388076782]  # x.x/|x|^2 != 1.0
    cos = row_cosines(rows(x, [1.0, 0.0, 0.0]), rows(x, [0.0, 1.0, 0.0]))
    assert cos.tolist() == [1.0, 0.0]


def test_cosines_clamp_to_plus_and_minus_one():
    x = rows([1.025344967842102, 4.131227970123291, 0.9488182067871094])  # rounds past 1
    assert row_cosines(x, 3 * x).tolist() == [1.0]
    assert row_cosines(x, -3 * x).tolist() == [-1.0]


def test_a_one_dimensional_tensor_is_one_row_per_element():
    v = judge(torch.tensor([1.0, 2.0]), torch.tensor([1.0, -2.0]), COSINE)
    assert v.rows == 2 and v.cos_min == -1.0 and v.worst == 1


def test_a_tie_keeps_the_first_worst_text():
    one = Judge("x", COSINE)
    one.update(rows([1.0, 0.0]), rows([1.0, 1.0]), rows=[4])
    one.update(rows([1.0, 0.0]), rows([1.0, 1.0]), rows=[2])
    assert one.verdict().worst == 4


def test_a_mask_applies_to_per_token_scalars():
    a = rows([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    b = rows([1.0, 1.0, 9.0], [1.0, 1.0, 1.0])
    v = judge(a, b, Tolerance(atol=0.1), mask=torch.tensor([[1, 1, 0], [1, 1, 1]]))
    assert v.max_abs == 0.0 and v.compared == 5 and v.passed


def test_the_mean_difference_is_summed_in_float64():
    v = judge(rows([0.0, 0.0]), rows([2.0**24, 1.0]), Tolerance())
    assert v.mean_abs == 8388608.5  # a float32 sum drops the 1


def test_passes_without_cosine_ignores_a_cosine_only_failure():
    v = judge(rows([1.0, 0.0]), rows([0.0, 1.0]), Tolerance(atol=1.0, min_cosine=0.5))
    assert v.cosine_failures and not v.elementwise_failures
    assert v.passes(cosine=False) and not v.passes() and not v.passed
