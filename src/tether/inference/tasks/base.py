"""The Task contract: how to check, encode and run a batch of inputs for one kind of job.

The engine owns ordering, batching and error rows; a task only knows its model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from tether.errors import TaskError

#: The user's hook around the forward pass, Beam's ``inference_fn`` idea:
#: ``inference_fn(model, inputs, device, inference_args) -> outputs``, where ``inputs``
#: is the padded batch (a dict of tensors already on ``device``; for the pipeline task,
#: the list of inputs) and the outputs are what ``model(**inputs)`` would return.
InferenceFn = Callable[[Any, Any, Any, Mapping[str, Any]], Any]


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
    #: The output an optimised graph of this task's forward pass gives (None: the task
    #: runs PyTorch only). See ``attach``.
    graph_output: ClassVar[str | None] = None

    def __init__(
        self,
        loaded: Any,
        *,
        inference_fn: InferenceFn | None = None,
        inference_args: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.device = loaded.device
        self.inference_fn = inference_fn
        self.inference_args = dict(inference_args or {})
        #: Runs the forward pass instead of the PyTorch module when set (``attach``).
        self.backend: Any = None
        if inference_fn is not None and not callable(inference_fn):
            raise TaskError(
                f"inference_fn must be callable, got {type(inference_fn).__name__}.",
                "Pass a function (model, inputs, device, inference_args) -> outputs.",
                task=self.name,
            )
        if options:
            raise TaskError(
                f"Task {self.name!r} got unknown option(s): {', '.join(sorted(options))}.",
                f"Check the options of the {self.name!r} task in the docs.",
            )

    @property
    def graph_module(self) -> Any:
        """The module an optimised graph replaces (None: this task cannot use one)."""
        return None

    def attach(self, backend: Any) -> None:
        """Run the forward pass with ``backend`` (an optimised graph of this task's
        module: collated inputs in, ``{graph_output: tensor}`` out) instead of PyTorch."""
        if self.graph_output is None or self.graph_module is None:
            raise TaskError(
                f"The {self.name!r} task cannot run an optimised graph.",
                "Run it on the original model (load the source, not the optimised bundle).",
                task=self.name,
            )
        if self.inference_fn is not None or self.inference_args:
            raise TaskError(
                "inference_fn and inference_args change the PyTorch call, which an optimised "
                "graph does not make.",
                "Load the original model to pass inference_fn=, or drop it.",
                task=self.name,
            )
        self.backend = backend

    def call_model(self, model: Any, inputs: Any) -> Any:
        """One forward pass: the user's ``inference_fn`` when given, else ``model(**inputs)``
        with ``inference_args`` as extra keyword arguments."""
        if self.inference_fn is not None:
            return self.inference_fn(model, inputs, self.device, self.inference_args)
        return model(**inputs, **self.inference_args)

    @abstractmethod
    def check(self, example: Any) -> None:
        """Raise RecordProblem if ``example`` cannot be run at all."""

    @abstractmethod
    def encode(self, examples: list[Any]) -> list[Encoded]:
        """Turn checked examples into Encoded items (tokenise, convert...)."""

    @abstractmethod
    def forward(self, batch: list[Encoded]) -> list[Any]:
        """Run the model on one batch; return one inference per item, in batch order."""
