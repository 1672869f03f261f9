"""``fill-mask``: text with mask token(s) -> top-k candidates for each mask."""

from __future__ import annotations

from typing import Any

from tether.errors import TaskError
from tether.inference.tasks.base import Encoded, RecordProblem
from tether.inference.tasks.text import TextTask


class FillMaskTask(TextTask):
    name = "fill-mask"
    default_model_class = "AutoModelForMaskedLM"

    def __init__(self, loaded: Any, top_k: int = 5, **options: Any) -> None:
        super().__init__(loaded, **options)
        self.top_k = top_k
        self.mask_token = self.tokenizer.mask_token
        self.mask_id = self.tokenizer.mask_token_id
        if self.mask_token is None:
            raise TaskError(
                f"The tokenizer of {loaded.spec.source!r} has no mask token.",
                "Use a masked-language model (BERT, RoBERTa, ...) for fill-mask.",
            )
        if not hasattr(loaded.model, "get_output_embeddings") or (
            loaded.model.get_output_embeddings() is None
        ):
            raise TaskError(
                f"fill-mask needs a masked-LM head, but the spec loaded "
                f"{type(loaded.model).__name__}.",
                "Set model_class='AutoModelForMaskedLM' in the spec.",
            )

    def check(self, example: Any) -> None:
        super().check(example)
        if self.mask_token not in example:
            raise RecordProblem(f"text has no mask token {self.mask_token!r}", kind="no-mask")

    def forward(self, batch: list[Encoded]) -> list[Any]:
        import torch

        inputs = self.collate(batch)
        logits = self.call_model(self.model, inputs).logits
        results: list[Any] = []
        for row, ids in enumerate(inputs["input_ids"]):
            positions = (ids == self.mask_id).nonzero().flatten().tolist()
            if not positions:
                results.append(RecordProblem("the mask token was truncated away", "too-long"))
                continue
            masks = []
            for pos in positions:
                probs = torch.softmax(logits[row, pos].float(), dim=-1)
                scores, tokens = probs.topk(self.top_k)
                masks.append(
                    [
                        {
                            "token": int(t),
                            "token_str": self.tokenizer.decode([int(t)]).strip(),
                            "score": float(s),
                        }
                        for s, t in zip(scores.tolist(), tokens.tolist(), strict=True)
                    ]
                )
            results.append(masks)
        return results
