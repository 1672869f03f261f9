"""The Task contract: how to check, encode and run a batch of inputs for one kind of job.

The engine owns ordering, batching and error rows; a task only knows its model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from tether.errors import TaskError


@dataclass
class Encoded:
    """One input ready for batching: ``length`` orders it, ``data`` is task-specific."""

    length: int
    data: Any
    truncated: bool = False


class RecordProblem(Exception):
    """Raised by a task for one bad record; the engine turns it into an error row."""

    def __init__(self, reason: str, kind: str = "bad-input") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class Task(ABC):
    """Base class for tasks. Subclasses set ``name`` and implement the three steps."""

    name: ClassVar[str]
    #: The transformers class a model is loaded as for this task when the user names
    #: none (None: the task reads whatever the spec loads, e.g. a pipeline's own class).
    default_model_class: ClassVar[str | None] = None

    def __init__(self, loaded: Any, **options: Any) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.device = loaded.device
        if options:
            raise TaskError(
                f"Task {self.name!r} got unknown option(s): {', '.join(sorted(options))}.",
                f"Check the options of the {self.name!r} task in the docs.",
            )

    @abstractmethod
    def check(self, example: Any) -> None:
        """Raise RecordProblem if ``example`` cannot be run at all."""

    @abstractmethod
    def encode(self, examples: list[Any]) -> list[Encoded]:
        """Turn checked examples into Encoded items (tokenise, convert...)."""

    @abstractmethod
    def forward(self, batch: list[Encoded]) -> list[Any]:
        """Run the model on one batch; return one inference per item, in batch order."""
