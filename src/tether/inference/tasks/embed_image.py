"""``embed`` for vision encoders: an image (path, PIL image or array) -> one vector.

Chosen by ``make_task("embed", ...)`` when the model takes images (an image processor
and no tokenizer). The vector is the model's image features where it defines them
(CLIP-style ``get_image_features``, so images and texts share one space), else the
encoder's pooled output (ViT with a pooler), else its CLS token (what a ViT
classifier's head reads).
"""

from __future__ import annotations

from typing import Any

from tether.inference.tasks.base import Encoded, RecordProblem, Task
from tether.inference.tasks.pipeline import _read_image


class ImageEmbedTask(Task):
    name = "embed"

    def __init__(self, loaded: Any, *, normalize: bool | None = None, **options: Any) -> None:
        super().__init__(loaded, **options)
        self.processor = getattr(loaded.processor, "image_processor", loaded.processor)
        spec_normalize = loaded.spec.normalize
        self.normalize = bool(normalize if normalize is not None else spec_normalize)

    def check(self, example: Any) -> None:
        readable = isinstance(example, str | bytes | bytearray)
        if readable and not example.strip():
            raise RecordProblem("empty image path or contents", kind="empty")
        if not readable and not hasattr(example, "shape") and not hasattr(example, "convert"):
            raise RecordProblem(
                "expected an image path, file bytes, PIL image or array, got "
                f"{type(example).__name__}",
                kind="not-image",
            )

    def encode(self, examples: list[Any]) -> list[Encoded]:
        encoded = []
        for example in examples:
            readable = isinstance(example, str | bytes | bytearray)
            image = _read_image(example) if readable else example
            pixels = self.processor(images=[image], return_tensors="pt")["pixel_values"][0]
            encoded.append(Encoded(1, pixels))  # the processor resizes: one shape for all
        return encoded

    def forward(self, batch: list[Encoded]) -> list[Any]:
        import torch

        pixels = torch.stack([item.data for item in batch]).to(self.device)
        model = self.model
        if hasattr(model, "get_image_features"):
            vectors = model.get_image_features(pixel_values=pixels)
            vectors = getattr(vectors, "pooler_output", vectors)
        else:
            output = self.call_model(getattr(model, "base_model", model), {"pixel_values": pixels})
            pooled = getattr(output, "pooler_output", None)
            # No pooler (a ViT classifier's encoder): the CLS token, which its head reads.
            vectors = pooled if pooled is not None else output.last_hidden_state[:, 0]
        if self.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return list(vectors.float().cpu().numpy())
