"""Length-aware batching: sort by token length, fill batches by a token budget, pad per batch.

Padding is wasted compute. Sorting by exact token length and capping each batch by
``batch_size x longest`` (the padded area) keeps shapes tight; the caller restores
input order afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Padded tokens and rows per forward pass, by device type. On CPU small batches keep
#: activations in cache: all-MiniLM-L6-v2 on 2 cores ran ~1.35x faster at 2048 tokens /
#: 64 rows than at 16384 / 256 (benchmarks/embed_throughput.py). GPUs want big batches.
BUDGETS = {"cpu": (2_048, 64), "gpu": (32_768, 512)}
DEFAULT_MAX_TOKENS, DEFAULT_MAX_ROWS = BUDGETS["cpu"]


def default_budget(device: object) -> tuple[int, int]:
    """(max_tokens, max_rows) suited to a torch device."""
    kind = getattr(device, "type", str(device))
    return BUDGETS["cpu"] if kind == "cpu" else BUDGETS["gpu"]


def plan_batches(
    lengths: Sequence[int],
    max_tokens: int = DEFAULT_MAX_TOKENS,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> list[list[int]]:
    """Group indices into batches whose padded size stays within ``max_tokens``.

    Longest first, so an out-of-memory batch shows up at the start, not after an hour.
    Every index appears in exactly one batch; a single over-budget item gets a batch
    of its own.
    """
    if max_tokens < 1 or max_rows < 1:
        raise ValueError(f"max_tokens and max_rows must be positive, got {max_tokens}, {max_rows}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        length = max(int(lengths[index]), 1)
        widest = max(longest, length)
        if current and (widest * (len(current) + 1) > max_tokens or len(current) >= max_rows):
            batches.append(current)
            current, widest = [], length
        current.append(index)
        longest = widest
    if current:
        batches.append(current)
    return batches


def pad_ids(rows: Sequence[Sequence[int]], pad_value: int) -> Any:
    """Right-pad integer rows into one int64 tensor of shape (len(rows), longest)."""
    import numpy as np
    import torch

    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), pad_value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return torch.from_numpy(out)


def attention_mask(lengths: Sequence[int], width: int | None = None) -> Any:
    """(batch, width) int64 mask with ones over the real tokens (width: the longest)."""
    import torch

    lens = torch.as_tensor(list(lengths), dtype=torch.int64)
    if width is None:
        width = int(lens.max()) if len(lens) else 0
    return (torch.arange(width).unsqueeze(0) < lens.unsqueeze(1)).to(torch.int64)
