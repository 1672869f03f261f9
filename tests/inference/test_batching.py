import pytest
import torch

from tether.inference.batching import attention_mask, pad_ids, plan_batches


def test_every_index_is_batched_exactly_once():
    lengths = [5, 100, 3, 3, 50, 7, 1, 99, 2, 64]
    batches = plan_batches(lengths, max_tokens=128, max_rows=4)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(lengths)))


def test_batches_respect_the_token_budget_and_size_cap():
    lengths = [10, 20, 30, 40, 5, 5, 5, 5, 5, 5, 5, 5]
    for batch in plan_batches(lengths, max_tokens=60, max_rows=5):
        assert len(batch) <= 5
        assert max(lengths[i] for i in batch) * len(batch) <= 60 or len(batch) == 1


def test_batches_are_sorted_longest_first_so_padding_is_small():
    lengths = [3, 9, 1, 9, 3, 1]
    batches = plan_batches(lengths, max_tokens=18, max_rows=8)
    assert [[lengths[i] for i in b] for b in batches] == [[9, 9], [3, 3, 1, 1]]


def test_an_item_over_budget_gets_a_batch_of_its_own():
    first, rest = plan_batches([500, 2, 2], max_tokens=10, max_rows=8)
    assert first == [0]
    assert sorted(rest) == [1, 2]  # equal lengths: their order within the batch is free


def test_bad_budget_is_rejected():
    with pytest.raises(ValueError):
        plan_batches([1], max_tokens=0)


def test_pad_ids_and_mask():
    ids = pad_ids([[5, 6, 7], [8]], pad_value=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert attention_mask([3, 1]).tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == torch.int64


# -- properties of the planner (issue 16) ---------------------------------------------

import itertools  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tether.inference.batching import BUDGETS, default_budget  # noqa: E402


@given(
    lengths=st.lists(st.integers(0, 300), max_size=60),
    max_tokens=st.integers(1, 1000),
    max_rows=st.integers(1, 20),
)
def test_plan_properties(lengths, max_tokens, max_rows):
    batches = plan_batches(lengths, max_tokens=max_tokens, max_rows=max_rows)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))  # every index exactly once
    assert all(batches)  # no empty batch
    for batch in batches:
        assert len(batch) <= max_rows
        widest = max(max(lengths[i], 1) for i in batch)
        assert widest * len(batch) <= max_tokens or len(batch) == 1
    planned = [lengths[i] for i in flat]
    assert planned == sorted(planned, reverse=True)  # longest first, across the whole plan


@given(
    lengths=st.lists(st.integers(1, 50), min_size=1, max_size=40),
    max_tokens=st.integers(1, 400),
    max_rows=st.integers(1, 10),
)
def test_plan_is_greedy_each_batch_is_full_when_the_next_item_is_added(
    lengths, max_tokens, max_rows
):
    """A batch closes only when the next item would break a limit: no wasted passes."""
    batches = plan_batches(lengths, max_tokens=max_tokens, max_rows=max_rows)
    for batch, following in itertools.pairwise(batches):
        widest = max(lengths[i] for i in [*batch, following[0]])
        assert len(batch) == max_rows or widest * (len(batch) + 1) > max_tokens


def test_budget_limits_are_both_enforced_exactly():
    def sizes(lengths, max_tokens, max_rows):
        return [len(b) for b in plan_batches(lengths, max_tokens, max_rows)]

    # Rows of 10 tokens: first the token budget binds (3 rows), then the row cap (2).
    assert sizes([10] * 10, max_tokens=30, max_rows=5) == [3, 3, 3, 1]
    assert sizes([10] * 5, max_tokens=1000, max_rows=2) == [2, 2, 1]
    assert sizes([10] * 4, max_tokens=40, max_rows=4) == [4]  # exactly at the budget
    # The widest item sets the padded size: 9 + 1 would pad to 2 x 9 = 18 > 17.
    assert plan_batches([9, 1], max_tokens=17, max_rows=8) == [[0], [1]]
    assert plan_batches([9, 1], max_tokens=18, max_rows=8) == [[0, 1]]


def test_zero_length_items_count_as_one_token():
    assert [len(b) for b in plan_batches([0, 0, 0], max_tokens=2, max_rows=8)] == [2, 1]


@pytest.mark.parametrize("kwargs", [{"max_tokens": 0}, {"max_rows": 0}, {"max_tokens": -5}])
def test_each_non_positive_limit_is_rejected(kwargs):
    with pytest.raises(ValueError, match="must be positive"):
        plan_batches([1, 2], **kwargs)


def test_default_budget_by_device_type():
    assert default_budget("cpu") == BUDGETS["cpu"]
    assert default_budget(torch.device("cpu")) == BUDGETS["cpu"]
    assert default_budget(torch.device("cuda", 1)) == BUDGETS["gpu"]
    assert default_budget("mps") == BUDGETS["gpu"]
    assert BUDGETS["cpu"] != BUDGETS["gpu"]


def test_pad_and_mask_edges():
    assert pad_ids([], pad_value=0).shape == (0, 0)
    assert pad_ids([[1], [2, 3]], pad_value=-1).tolist() == [[1, -1], [2, 3]]
    assert attention_mask([]).shape == (0, 0)
    mask = attention_mask([1, 3, 2])
    assert mask.tolist() == [[1, 0, 0], [1, 1, 1], [1, 1, 0]] and mask.dtype == torch.int64


def test_default_budget_reads_the_device_type_not_its_string():
    # str(torch.device("cpu", 0)) is "cpu:0": only the type says it is a CPU.
    assert default_budget(torch.device("cpu", 0)) == BUDGETS["cpu"]


def test_bad_budget_message_names_both_arguments_and_values():
    with pytest.raises(ValueError, match=r"^max_tokens and max_rows must be positive, got 5, -1$"):
        plan_batches([1], max_tokens=5, max_rows=-1)


def test_padded_ids_are_int64_whatever_integer_type_the_pad_id_has():
    import numpy as np

    # A pad id read from a numpy array is an np.int32 on some tokenizers; the ids tensor
    # must not inherit that type from the pad value.
    assert pad_ids([[1, 2], [3]], pad_value=np.int32(0)).dtype == torch.int64
