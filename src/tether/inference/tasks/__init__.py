"""Tasks: how to feed a model and read its output, one file per kind of job."""

from __future__ import annotations

from typing import Any

from tether.errors import TaskError
from tether.inference.tasks.base import Encoded, RecordProblem, Task
from tether.inference.tasks.classify import ClassifyTask
from tether.inference.tasks.embed import EmbedTask
from tether.inference.tasks.embed_image import ImageEmbedTask
from tether.inference.tasks.fill_mask import FillMaskTask
from tether.inference.tasks.pipeline import PipelineTask
from tether.inference.tasks.tensor import TensorTask

TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (EmbedTask, ClassifyTask, FillMaskTask, PipelineTask, TensorTask)
}


def default_model_class(task: str) -> str | None:
    """The model class ``task`` loads by default (None for pipeline/tensor or unknown)."""
    cls = TASKS.get(task)
    return cls.default_model_class if cls else None


def make_task(name: str, loaded: Any, **options: Any) -> Task:
    """Build the task called ``name`` for a loaded model."""
    try:
        cls = TASKS[name]
    except KeyError:
        raise TaskError(
            f"Unknown task {name!r}.", f"Use one of: {', '.join(sorted(TASKS))}."
        ) from None
    if cls is EmbedTask:
        modality = options.pop("modality", None) or (
            "image" if loaded.tokenizer is None and loaded.report.modality == "image" else "text"
        )
        if modality not in ("text", "image"):
            raise TaskError(
                f"embed takes modality 'text' or 'image', got {modality!r}.",
                "Pass modality='image' to embed images with a model that also reads text.",
                task=name,
            )
        if modality == "image":
            cls = ImageEmbedTask  # images in, one vector each (CLIP's image tower too)
    return cls(loaded, **options)


__all__ = ["TASKS", "Encoded", "RecordProblem", "Task", "default_model_class", "make_task"]
