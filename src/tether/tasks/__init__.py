"""Tasks: how to feed a model and read its output, one file per kind of job."""

from __future__ import annotations

from typing import Any

from tether.errors import TetherError
from tether.tasks.base import Encoded, RecordProblem, Task
from tether.tasks.classify import ClassifyTask
from tether.tasks.embed import EmbedTask
from tether.tasks.fill_mask import FillMaskTask
from tether.tasks.pipeline import PipelineTask
from tether.tasks.tensor import TensorTask

TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (EmbedTask, ClassifyTask, FillMaskTask, PipelineTask, TensorTask)
}


def make_task(name: str, loaded: Any, **options: Any) -> Task:
    """Build the task called ``name`` for a loaded model."""
    try:
        cls = TASKS[name]
    except KeyError:
        raise TetherError(
            f"Unknown task {name!r}.", f"Use one of: {', '.join(sorted(TASKS))}."
        ) from None
    return cls(loaded, **options)


__all__ = ["TASKS", "Encoded", "RecordProblem", "Task", "make_task"]
