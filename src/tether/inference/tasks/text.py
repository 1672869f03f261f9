"""Shared text handling: validation and fast tokenisation straight into token ids.

The Rust tokenizer's ``encode_batch`` is called directly (no padding, truncation at
``max_length``), which is what ``tokenizer(texts, truncation=True)`` does minus the
Python overhead; its ``overflowing`` field says whether a text was truncated.
"""

from __future__ import annotations

import inspect
from typing import Any

from tether.errors import TokenizerError
from tether.inference.batching import attention_mask, pad_ids
from tether.inference.tasks.base import Encoded, RecordProblem, Task


class TextTask(Task):
    """A task whose inputs are strings, tokenised and padded per batch."""

    def __init__(self, loaded: Any, **options: Any) -> None:
        super().__init__(loaded, **options)
        tokenizer = loaded.tokenizer
        if tokenizer is None:
            raise TokenizerError(
                f"The {self.name!r} task reads text, but {loaded.spec.source!r} has no tokenizer "
                "files.",
                "Set tokenizer to the repo or directory the model's tokenizer was saved in, "
                "or run tensor inputs with the 'tensor' task.",
                source=loaded.spec.source,
            )
        self.tokenizer = tokenizer
        self.max_length = loaded.max_length
        self.pad_id = _pad_id(tokenizer)
        self._backend = _truncating_backend(tokenizer, self.max_length)
        model = getattr(self.model, "base_model", self.model)
        self.use_token_type_ids = "token_type_ids" in getattr(
            tokenizer, "model_input_names", ()
        ) and _accepts(model, "token_type_ids")

    def check(self, example: Any) -> None:
        if not isinstance(example, str):
            raise RecordProblem(
                f"expected a text string, got {type(example).__name__}", kind="not-text"
            )
        if not example.strip():
            raise RecordProblem("empty or whitespace-only text", kind="empty")

    def encode(self, examples: list[Any]) -> list[Encoded]:
        if self._backend is not None:
            encodings = self._backend.encode_batch(examples)
            return [
                Encoded(len(e.ids), (e.ids, e.type_ids), truncated=bool(e.overflowing))
                for e in encodings
            ]
        batch = self.tokenizer(
            examples, truncation=True, max_length=self.max_length, return_overflowing_tokens=False
        )
        full = self.tokenizer(examples, truncation=False)["input_ids"]
        type_ids = batch.get("token_type_ids") or [[0] * len(ids) for ids in batch["input_ids"]]
        return [
            Encoded(len(ids), (ids, types), truncated=len(f) > len(ids))
            for ids, types, f in zip(batch["input_ids"], type_ids, full, strict=True)
        ]

    def collate(self, batch: list[Encoded]) -> dict[str, Any]:
        """Pad one batch to its own longest item and move it to the model's device."""
        inputs = {
            "input_ids": pad_ids([item.data[0] for item in batch], self.pad_id),
            "attention_mask": attention_mask([item.length for item in batch]),
        }
        if self.use_token_type_ids:
            inputs["token_type_ids"] = pad_ids([item.data[1] for item in batch], 0)
        return {k: v.to(self.device, non_blocking=True) for k, v in inputs.items()}


def _pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def _truncating_backend(tokenizer: Any, max_length: int) -> Any:
    """A private copy of the Rust tokenizer that truncates and never pads."""
    if not getattr(tokenizer, "is_fast", False):
        return None
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.enable_truncation(max_length=max_length)
    return backend


def _accepts(model: Any, name: str) -> bool:
    params = inspect.signature(model.forward).parameters
    return name in params
