"""``embed``: text -> one vector, using the model's own pooling.

Whatever head class was loaded, embeddings come from the encoder's hidden states
(``model.base_model``), never from vocabulary logits. Pooling and normalisation come
from the spec, else the sentence-transformers config, else mean pooling.
"""

from __future__ import annotations

from typing import Any

from tether.constants import POOLING_MODES
from tether.errors import TaskError
from tether.inference.tasks.base import Encoded
from tether.inference.tasks.text import TextTask

#: sentence-transformers modules the embed task reproduces exactly.
_SUPPORTED_ST_MODULES = ("Transformer", "Pooling", "Normalize")


class EmbedTask(TextTask):
    name = "embed"
    default_model_class = "AutoModel"
    graph_output = "last_hidden_state"

    def __init__(self, loaded: Any, **options: Any) -> None:
        super().__init__(loaded, **options)
        spec = loaded.spec
        st = loaded.report.sentence_transformers
        self.sentence_transformer = spec.is_sentence_transformers
        if st and not self.sentence_transformer:
            unsupported = [
                m for m in st.modules if m.rsplit(".", 1)[-1] not in _SUPPORTED_ST_MODULES
            ]
            if unsupported:
                raise TaskError(
                    f"{spec.source!r} is a sentence-transformers model with modules tether's "
                    f"embed task does not reproduce: {', '.join(unsupported)}.",
                    "Load it with model_class='SentenceTransformer' so its own modules run.",
                )
        default_pooling = "last" if _is_decoder(loaded.model) else "mean"
        self.pooling = spec.pooling or (st.pooling if st else None) or default_pooling
        if self.pooling not in POOLING_MODES:
            raise TaskError(
                f"Pooling mode {self.pooling!r} from the model's config is not supported.",
                f"Set pooling to one of {', '.join(POOLING_MODES)} in the spec.",
            )
        self.normalize = spec.normalize if spec.normalize is not None else bool(st and st.normalize)
        self.encoder = loaded.model if self.sentence_transformer else loaded.model.base_model
        self.text_features = not self.sentence_transformer and hasattr(
            loaded.model, "get_text_features"
        )

    @property
    def graph_module(self) -> Any:
        """The module an optimised graph replaces (None where the task pools another way)."""
        return None if self.sentence_transformer or self.text_features else self.encoder

    def forward(self, batch: list[Encoded]) -> list[Any]:
        import torch

        inputs = self.collate(batch)
        if self.sentence_transformer:
            vectors = self.model(inputs)["sentence_embedding"]
        elif self.text_features:
            # CLIP-style: the projected text features share one space with the images'.
            vectors = self.model.get_text_features(**inputs)
            vectors = getattr(vectors, "pooler_output", vectors)
            if self.normalize:
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        else:
            if self.backend is not None:
                hidden = self.backend(inputs)["last_hidden_state"]
            else:
                output = self.call_model(self.encoder, inputs)
                hidden = output[0] if isinstance(output, tuple) else output.last_hidden_state
            vectors = pool(hidden, inputs["attention_mask"], self.pooling)
            if self.normalize:
                vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return list(vectors.float().cpu().numpy())


def pool(hidden: Any, mask: Any, mode: str) -> Any:
    """Pool (batch, seq, dim) hidden states into (batch, dim) over real tokens."""
    import torch

    if mode == "cls":
        return hidden[:, 0]
    if mode == "last":  # right-padded: the last real token sits at length - 1
        last = mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    summed = (hidden * weights).sum(dim=1)
    counts = weights.sum(dim=1).clamp(min=1e-9)
    if mode == "mean_sqrt_len":
        return summed / counts.sqrt()
    return summed / counts


def _is_decoder(model: Any) -> bool:
    config = getattr(model, "config", None)
    return bool(getattr(config, "is_decoder", False)) or getattr(config, "model_type", "") in (
        "gpt2",
        "gpt_neo",
        "gptj",
        "llama",
        "mistral",
        "qwen2",
        "phi",
        "gemma",
    )
