"""``pipeline``: any ``transformers.pipeline()`` task over strings or file paths."""

from __future__ import annotations

from typing import Any

from tether.errors import TaskError
from tether.inference.tasks.base import Encoded, InferenceFn, RecordProblem, Task


class PipelineTask(Task):
    name = "pipeline"

    def __init__(
        self,
        loaded: Any,
        *,
        inference_fn: InferenceFn | None = None,
        **pipeline_kwargs: Any,
    ) -> None:
        """``pipeline_kwargs`` are the pipeline's call arguments (``top_k``,
        ``max_new_tokens``...); ``inference_fn(pipe, inputs, device, pipeline_kwargs)``
        replaces the call."""
        super().__init__(loaded, inference_fn=inference_fn)
        if loaded.pipeline is None:
            raise TaskError(
                "The pipeline task needs a spec with task set (e.g. task='text-classification').",
                "Set ModelSpec.task instead of model_class.",
            )
        self.pipe = loaded.pipeline
        self.kwargs = pipeline_kwargs

    def check(self, example: Any) -> None:
        if isinstance(example, dict):
            return  # e.g. question-answering {"question": ..., "context": ...}
        if not isinstance(example, str):
            raise RecordProblem(
                f"expected a string (text or file path), got {type(example).__name__}",
                kind="not-text",
            )
        if not example.strip():
            raise RecordProblem("empty or whitespace-only input", kind="empty")

    def encode(self, examples: list[Any]) -> list[Encoded]:
        return [Encoded(len(str(e)), e) for e in examples]

    def forward(self, batch: list[Encoded]) -> list[Any]:
        inputs = [item.data for item in batch]
        if self.inference_fn is not None:
            outputs = list(self.inference_fn(self.pipe, inputs, self.device, self.kwargs))
            if len(outputs) != len(inputs):
                raise RuntimeError(
                    f"inference_fn returned {len(outputs)} results for {len(inputs)} inputs"
                )
            return outputs
        if len(inputs) == 1:
            # Pipelines unwrap one-item lists, and some wrap a single input in a list: run
            # it twice so its output has the same shape as in any larger batch.
            return list(self.pipe(inputs * 2, batch_size=2, **self.kwargs))[:1]
        outputs = list(self.pipe(inputs, batch_size=len(inputs), **self.kwargs))
        if len(outputs) != len(inputs):
            raise RuntimeError(f"pipeline returned {len(outputs)} results for {len(inputs)} inputs")
        return outputs
