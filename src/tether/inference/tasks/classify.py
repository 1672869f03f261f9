"""``classify``: text -> label and scores, from a sequence-classification head."""

from __future__ import annotations

from typing import Any

from tether.errors import TaskError
from tether.inference.tasks.base import Encoded
from tether.inference.tasks.text import TextTask


class ClassifyTask(TextTask):
    name = "classify"
    default_model_class = "AutoModelForSequenceClassification"
    graph_output = "logits"

    def __init__(self, loaded: Any, **options: Any) -> None:
        super().__init__(loaded, **options)
        config = loaded.model.config
        id2label = getattr(config, "id2label", None) or {}
        vocab = getattr(config, "vocab_size", None)
        architecture = type(loaded.model).__name__
        if "SequenceClassification" not in architecture or (vocab and len(id2label) == vocab):
            raise TaskError(
                f"The classify task needs a sequence-classification head, but the spec loaded "
                f"{architecture}.",
                "Set model_class='AutoModelForSequenceClassification' in the spec.",
            )
        self.labels = [str(id2label.get(i, f"LABEL_{i}")) for i in range(len(id2label))]
        self.multi_label = getattr(config, "problem_type", None) == "multi_label_classification"

    @property
    def graph_module(self) -> Any:
        """The module an optimised graph replaces: the whole model with its head."""
        return self.model

    def forward(self, batch: list[Encoded]) -> list[Any]:
        import torch

        inputs = self.collate(batch)
        if self.backend is not None:
            logits = self.backend(inputs)["logits"]
        else:
            logits = self.call_model(self.model, inputs).logits.float()
        probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
        results = []
        for row in probs.cpu().tolist():
            best = max(range(len(row)), key=row.__getitem__)
            results.append(
                {
                    "label": self.labels[best],
                    "score": row[best],
                    "scores": dict(zip(self.labels, row, strict=True)),
                }
            )
        return results
