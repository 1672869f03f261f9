"""``tensor``: raw tensors, numpy arrays or dicts of them -> model outputs per example.

Each example is one unbatched input (e.g. ``input_ids`` of shape (seq,)). Examples of
different lengths are right-padded per batch, with an attention mask added, and the
outputs are split per example and trimmed back to each example's own length, so
they match what the example gives on its own.

A dict whose fields have different lengths (VisualBERT: 11 text tokens and 3 image
regions, concatenated inside the model) cannot be padded on one axis and trimmed back
exactly, so such examples are batched only with examples of the same shapes, unpadded.
"""

from __future__ import annotations

from typing import Any

from tether.inference.tasks.base import Encoded, RecordProblem, Task


class TensorTask(Task):
    name = "tensor"

    def __init__(self, loaded: Any, **options: Any) -> None:
        super().__init__(loaded, **options)
        self.main_input = getattr(self.model, "main_input_name", "input_ids")
        tokenizer = loaded.tokenizer
        pad = getattr(tokenizer, "pad_token_id", None) if tokenizer is not None else None
        self.pad_values = {"input_ids": int(pad) if pad is not None else 0}
        config = getattr(self.model, "config", None)
        sizes = (getattr(config, n, None) for n in ("hidden_size", "num_labels", "vocab_size"))
        self._ambiguous_widths = {s for s in sizes if isinstance(s, int)}
        positions = getattr(config, "max_position_embeddings", None)
        self._max_positions = positions if isinstance(positions, int) else 1 << 30

    def check(self, example: Any) -> None:
        values = example.values() if isinstance(example, dict) else [example]
        if isinstance(example, dict) and not example:
            raise RecordProblem("empty dict of tensors", kind="empty")
        for value in values:
            if not _is_array(value):
                raise RecordProblem(
                    f"expected a torch tensor, numpy array or dict of them, got "
                    f"{type(value).__name__}",
                    kind="not-tensor",
                )
            if value.ndim == 0 or value.shape[0] == 0:
                raise RecordProblem("empty tensor", kind="empty")

    def encode(self, examples: list[Any]) -> list[Encoded]:
        import torch

        encoded = []
        for example in examples:
            as_numpy = not isinstance(
                next(iter(example.values())) if isinstance(example, dict) else example,
                torch.Tensor,
            )
            items = example if isinstance(example, dict) else {self.main_input: example}
            tensors = {k: torch.as_tensor(v) for k, v in items.items()}
            length = int(next(iter(tensors.values())).shape[0])
            encoded.append(Encoded(length, (tensors, as_numpy, isinstance(example, dict))))
        return encoded

    def forward(self, batch: list[Encoded]) -> list[Any]:
        if (
            any(_ragged(item.data[0]) for item in batch)
            and len({_shapes(item.data[0]) for item in batch}) > 1
        ):
            return self._forward_by_shape(batch)
        return self._forward_padded(batch)

    def _forward_by_shape(self, batch: list[Encoded]) -> list[Any]:
        """Run each group of same-shaped examples as its own (unpadded) batch."""
        groups: dict[tuple[Any, ...], list[int]] = {}
        for index, item in enumerate(batch):
            groups.setdefault(_shapes(item.data[0]), []).append(index)
        results: list[Any] = [None] * len(batch)
        for indices in groups.values():
            for index, result in zip(
                indices, self._forward_padded([batch[i] for i in indices]), strict=True
            ):
                results[index] = result
        return results

    def _forward_padded(self, batch: list[Encoded]) -> list[Any]:
        import torch

        lengths = [item.length for item in batch]
        width = max(lengths)
        padded = width != min(lengths)
        if padded and width in self._ambiguous_widths and width < self._max_positions:
            # A padded width equal to a fixed output size (hidden size, labels) would let a
            # pooled output pass for a per-token one and be trimmed: pad one further.
            width += 1
        keys = list(batch[0].data[0])
        inputs: dict[str, Any] = {}
        for key in keys:
            rows = []
            for item in batch:
                if set(item.data[0]) != set(keys):
                    raise RecordProblem(f"keys differ within one batch: {sorted(item.data[0])}")
                value = item.data[0][key]
                if padded and value.shape[0] != width:
                    pad_shape = (width - value.shape[0], *value.shape[1:])
                    fill = self.pad_values.get(key, 0)
                    value = torch.cat([value, value.new_full(pad_shape, fill)])
                rows.append(value)
            inputs[key] = torch.stack(rows).to(self.device)
        if padded and "attention_mask" not in inputs:
            from tether.inference.batching import attention_mask

            inputs["attention_mask"] = attention_mask(lengths, width).to(self.device)
        output = self.call_model(self.model, inputs)
        fields = output.items() if hasattr(output, "items") else enumerate(output)
        results: list[Any] = [{} for _ in batch]
        for name, value in fields:
            for i, item in enumerate(batch):
                results[i][name] = _split(
                    value, i, item.length, width if padded else None, as_numpy=item.data[1]
                )
        return results


def _split(value: Any, i: int, length: int, width: int | None, as_numpy: bool) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        row = value[i]
        if width is not None and row.dim() >= 1 and row.shape[0] == width:
            row = row[:length]
        elif width is not None and row.dim() == 3 and row.shape[1:] == (width, width):
            row = row[:, :length, :length]  # attention maps (heads, seq, seq)
        row = row.detach().cpu()
        return row.numpy() if as_numpy else row
    if isinstance(value, tuple | list):
        return tuple(_split(v, i, length, width, as_numpy) for v in value)
    return value


def _shapes(tensors: dict[str, Any]) -> tuple[Any, ...]:
    return tuple((key, tuple(value.shape)) for key, value in tensors.items())


def _ragged(tensors: dict[str, Any]) -> bool:
    """Fields of different lengths in one example (e.g. text tokens and image regions)."""
    return len({int(value.shape[0]) for value in tensors.values()}) > 1


def _is_array(value: Any) -> bool:
    import numpy as np
    import torch

    return isinstance(value, torch.Tensor | np.ndarray)
