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
    assert plan_batches([500, 2, 2], max_tokens=10, max_rows=8) == [[0], [1, 2]]


def test_bad_budget_is_rejected():
    with pytest.raises(ValueError):
        plan_batches([1], max_tokens=0)


def test_pad_ids_and_mask():
    ids = pad_ids([[5, 6, 7], [8]], pad_value=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert attention_mask([3, 1]).tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == torch.int64
