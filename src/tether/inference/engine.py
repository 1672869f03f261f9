"""The batch inference engine: check, encode, batch by tokens, run, restore order.

``Engine.predict`` takes a list and returns one outcome per input, in input order: a
``Prediction`` or a ``RecordError``. ``Engine.stream`` does the same over any
iterable in chunks, encoding the next chunk in a background thread while the model
runs on the current one.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tether.errors import SpecError
from tether.inference.batching import default_budget, plan_batches
from tether.inference.results import Outcome, Prediction, RecordError
from tether.inference.tasks import Encoded, RecordProblem, Task, make_task
from tether.models.loading import LoadedModel

DEFAULT_CHUNK_SIZE = 4096


@dataclass
class _Prepared:
    """A chunk after checking and encoding: error rows already placed."""

    examples: list[Any]
    outcomes: list[Outcome | None]
    positions: list[int]  # chunk position of each encoded item
    encoded: list[Encoded]
    #: chunk position of a repeated text -> the position of its first occurrence: run
    #: once, the outcome copied (see ``_copy_duplicates``).
    duplicates: dict[int, int] = field(default_factory=dict)


class Engine:
    """Runs one task of one loaded model over many inputs, fast and without losing any."""

    def __init__(
        self,
        loaded: LoadedModel,
        task: str = "embed",
        *,
        max_tokens: int | None = None,
        max_rows: int | None = None,
        backend: Any = None,
        **task_options: Any,
    ) -> None:
        """``backend``: what runs the task's forward pass instead of the PyTorch module (an
        ``OnnxBackend`` or ``AutocastBackend``; ``tether.optimization.fastpath`` chooses
        the verified one); an optimised bundle brings its own."""
        for name, value in (("max_tokens", max_tokens), ("max_rows", max_rows)):
            if value is not None and value < 1:
                raise SpecError(
                    f"{name} must be a positive number, got {value}.",
                    f"Pass {name}=None for the device's default, or a number >= 1.",
                    field=name,
                )
        self.loaded = loaded
        self.task: Task = make_task(task, loaded, **task_options)
        default_tokens, default_rows = default_budget(loaded.device)
        self.max_tokens = max_tokens or default_tokens
        self.max_rows = max_rows or default_rows
        self.model_id = loaded.model_id
        self.stats: Counter[str] = Counter()
        #: What runs the forward pass: "pytorch", or the optimised graph's runtime.
        self.backend_name = "pytorch"
        #: Figures of the optimised graph's re-verification on this machine (None when
        #: the machine matches its evidence, or there is no optimised graph).
        self.reverified = None
        if loaded.optimized is not None:
            from tether.inference.optimized import attach_optimized

            self.reverified = attach_optimized(self)
        elif backend is not None:
            self.task.attach(backend)
            self.backend_name = str(getattr(backend, "label", None) or backend.name)

    # -- public ---------------------------------------------------------------------

    def predict(self, examples: Sequence[Any]) -> list[Outcome]:
        """One outcome per example, in the same order."""
        return self._run(self._prepare(list(examples)))

    def stream(
        self, examples: Iterable[Any], chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[Outcome]:
        """Outcomes for an iterable of any size, in order, with memory bounded by a chunk."""
        for outcomes in self.stream_chunks(_chunked(examples, chunk_size)):
            yield from outcomes

    def stream_chunks(self, chunks: Iterable[list[Any]]) -> Iterator[list[Outcome]]:
        """One list of outcomes per input chunk, in order.

        The next chunk is checked and tokenised in a background thread while the model
        runs on the current one (the Rust tokenizer releases the GIL).
        """
        iterator = iter(chunks)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tether-encode") as pool:
            first = next(iterator, None)
            pending = pool.submit(self._prepare, first) if first is not None else None
            while pending is not None:
                prepared = pending.result()
                following = next(iterator, None)
                pending = pool.submit(self._prepare, following) if following is not None else None
                yield self._run(prepared)

    # -- steps ----------------------------------------------------------------------

    def _prepare(self, examples: list[Any]) -> _Prepared:
        outcomes: list[Outcome | None] = [None] * len(examples)
        positions: list[int] = []
        first: dict[str, int] = {}
        duplicates: dict[int, int] = {}
        for i, example in enumerate(examples):
            try:
                self.task.check(example)
            except RecordProblem as problem:
                outcomes[i] = RecordError(example, problem.reason, problem.kind)
                continue
            if isinstance(example, str):  # an exact repeat is run once (texts only)
                seen = first.setdefault(example, i)
                if seen != i:
                    duplicates[i] = seen
                    continue
            positions.append(i)
        encoded = self._encode([examples[i] for i in positions], positions, outcomes)
        kept = [(p, e) for p, e in zip(positions, encoded, strict=True) if e is not None]
        return _Prepared(
            examples,
            outcomes,
            [p for p, _ in kept],
            [e for _, e in kept if e is not None],
            duplicates,
        )

    def _encode(
        self, examples: list[Any], positions: list[int], outcomes: list[Outcome | None]
    ) -> list[Encoded | None]:
        if not examples:
            return []
        try:
            return list(self.task.encode(examples))
        except Exception:  # one bad record must not sink the chunk: retry one by one
            result: list[Encoded | None] = []
            for position, example in zip(positions, examples, strict=True):
                try:
                    [item] = self.task.encode([example])
                    result.append(item)
                except RecordProblem as problem:  # the task's own verdict on this record
                    outcomes[position] = RecordError(example, problem.reason, problem.kind)
                    result.append(None)
                except Exception as exc:
                    outcomes[position] = RecordError(
                        example, f"could not encode: {type(exc).__name__}: {exc}", "bad-input"
                    )
                    result.append(None)
            return result

    def _run(self, prepared: _Prepared) -> list[Outcome]:
        import torch

        outcomes = prepared.outcomes
        examples = prepared.examples
        lengths = [item.length for item in prepared.encoded]
        with torch.inference_mode():
            for batch in plan_batches(lengths, self.max_tokens, self.max_rows):
                items = [prepared.encoded[j] for j in batch]
                for j, result in zip(batch, self._forward(items), strict=True):
                    position = prepared.positions[j]
                    example = examples[position]
                    if not isinstance(result, RecordProblem) and not is_finite(result):
                        result = RecordProblem(
                            "model output is not finite (NaN or inf)", "model-error"
                        )
                    if isinstance(result, RecordProblem):
                        outcomes[position] = RecordError(example, result.reason, result.kind)
                    else:
                        outcomes[position] = Prediction(example, result, self.model_id)
        truncated = self._copy_duplicates(prepared)
        self.stats["records"] += len(examples)
        self.stats["truncated"] += truncated + sum(item.truncated for item in prepared.encoded)
        self.stats["tokens"] += sum(lengths)
        final = [o for o in outcomes if o is not None]
        assert len(final) == len(examples), "every record must have an outcome"
        self.stats["errors"] += sum(isinstance(o, RecordError) for o in final)
        return final

    def _copy_duplicates(self, prepared: _Prepared) -> int:
        """Give each repeated text a copy of its first occurrence's outcome (the same
        numbers, computed once); count them as ``duplicates``. Returns how many of them
        were truncated, as their first occurrence was."""
        import copy

        if not prepared.duplicates:
            return 0
        outcomes, examples = prepared.outcomes, prepared.examples
        truncated = {
            p
            for p, item in zip(prepared.positions, prepared.encoded, strict=True)
            if item.truncated
        }
        count = 0
        for position, first in prepared.duplicates.items():
            done = outcomes[first]
            if isinstance(done, Prediction):
                outcomes[position] = Prediction(
                    examples[position], copy.deepcopy(done.inference), done.model_id
                )
            elif isinstance(done, RecordError):
                outcomes[position] = RecordError(examples[position], done.reason, done.kind)
            count += first in truncated
        self.stats["duplicates"] += len(prepared.duplicates)
        return count

    def _forward(self, items: list[Encoded]) -> list[Any]:
        """Run a batch; if it fails, run its items one by one to isolate the bad one."""
        try:
            return self.task.forward(items)
        except RecordProblem as problem:
            if len(items) == 1:
                return [problem]
        except Exception as exc:
            if len(items) == 1:
                return [RecordProblem(f"model failed: {type(exc).__name__}: {exc}", "model-error")]
        return [self._forward([item])[0] for item in items]


def _chunked(examples: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(examples)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def is_finite(value: Any) -> bool:
    """False if a model output holds a NaN or inf anywhere (arrays, tensors, dicts, lists)."""
    import math

    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(is_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(is_finite(v) for v in value)
    if type(value).__module__ == "torch" or type(value).__module__.startswith("numpy"):
        import numpy as np

        if hasattr(value, "detach"):
            value = value.detach().float().cpu().numpy()
        array = np.asarray(value)
        if array.dtype.kind in "fc":
            return bool(np.isfinite(array).all())
    return True
