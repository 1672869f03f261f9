"""The face: ``tether.Model("minilm").encode(texts)`` is one line and returns an array.

``Model`` loads once, through the same guarded ``load`` as everything else, and runs
its tasks through the ``Engine`` (batching by tokens, exact repeats run once, bad
records isolated). What comes back keeps the promise of every other runner: a record
that cannot run is never dropped silently. ``Embeddings`` is a NumPy array of the rows
that ran, carrying the ``errors`` (each with its input position) and the ``positions``
the rows came from, so ``records == len(rows) + len(errors)`` always; pass
``errors="raise"`` to get an exception instead.

Inputs are a list (or any iterable) of texts, or a ``Records`` (a file). The ``*_stream``
forms yield one result per chunk, so an input larger than memory stays bounded by a
chunk.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tether.errors import FailedRecordsError, SpecError, TaskError
from tether.inference.outputs import Embeddings, FailedRecord, Outputs
from tether.inference.records import Records
from tether.models.loading import LoadedModel
from tether.models.spec import ModelSpec

logger = logging.getLogger(__name__)

#: ``errors=``: keep the good rows and report the rest, or raise on any failure.
ERRORS = ("collect", "raise")
#: tether's own tasks; any other task name is a ``pipeline()`` task.
TETHER_TASKS = ("embed", "classify", "fill-mask", "tensor")
#: Inputs per engine chunk: bounds token buffers and, in the stream forms, each result.
CHUNK_SIZE = 4096


@dataclass
class _Item:
    """One input on its way through: where it came from, and any problem found before
    the model (an unreadable line, a missing label)."""

    position: int
    value: Any
    line: int | None = None
    id: Any = None
    label: str | None = None
    problem: tuple[str, str] | None = None  # (kind, reason)


@dataclass
class _Chunk:
    """The rows and failures of one chunk of inputs."""

    values: list[Any]
    positions: list[int]
    ids: list[Any]
    labels: list[str]
    errors: list[FailedRecord]
    records: int
    truncated: int


class Model:
    """A model loaded once, to embed, classify, fill masks or run any pipeline() task.

    ``Model("minilm")`` loads the shipped all-MiniLM-L6-v2 as its own class. The keywords
    are ``ModelSpec``'s (``model_class``, ``revision``, ``trust_remote_code``, ``dtype``,
    ``device``, ``pooling``, ``max_length``, ``allow_pickle``...), checked the same way,
    with one difference: ``model_class`` defaults from ``task``.

    Args:
        source: a hub repo id, a local directory or bundle, ``"minilm"``, a spec
            ``.json`` file, a ``ModelSpec`` (keywords change its fields) or a
            ``LoadedModel`` (no keywords).
        task: ``"embed"`` (the default: the checkpoint's own class, whose base model
            gives the vectors), ``"classify"`` (``AutoModelForSequenceClassification``),
            ``"fill-mask"`` (``AutoModelForMaskedLM``), or a ``pipeline()`` task such as
            ``"text-classification"`` or ``"image-classification"``, run by ``run``.
        backend: what runs the forward pass, as ``tether embed --backend``: ``"auto"``
            (the default: on a CPU, the verified exact graph, built and verified on
            first use and cached, else PyTorch; ``backend_reason`` says which and why),
            ``"exact"`` (that graph, or an error saying why not) or ``"pytorch"``. An
            optimised bundle loaded as the source runs its own verified graph.
        progress: where the one line said before the graph is built (first use on a
            machine, some seconds) goes: ``True`` (default) prints it on stderr, a
            callable gets it, ``False`` says nothing.
        cache_dir: where verified graphs are cached (default: ``$HF_HOME/tether/graphs``,
            else ``$XDG_CACHE_HOME/tether/graphs``, else ``~/.cache/tether/graphs``).
        max_tokens, max_rows: the engine's per-forward-pass budget (default: by device).
    Raises:
        SpecError: an invalid keyword (before anything loads), or an unknown backend.
        OptimizationError, MissingExtraError: ``backend="exact"`` where the graph does
            not apply or failed verification.
        Any error of ``load``: the guards hold here as everywhere.

    Pickling a Model keeps only its spec and options (never weights, never a token);
    unpickling loads the model again from that spec.
    """

    def __init__(
        self,
        source: str | Path | ModelSpec | LoadedModel = "minilm",
        *,
        task: str | None = None,
        model_class: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool | None = None,
        dtype: str | None = None,
        device: str | None = None,
        backend: str = "auto",
        max_tokens: int | None = None,
        max_rows: int | None = None,
        progress: bool | Callable[[str], None] = True,
        cache_dir: str | Path | None = None,
        **spec_options: Any,
    ) -> None:
        check_backend(backend)
        for name, value in (("max_tokens", max_tokens), ("max_rows", max_rows)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SpecError(
                    f"{name} must be a positive integer, got {value!r}.",
                    f"Pass {name}=None for the device's default, or a number >= 1.",
                    field=name,
                )
        given = {
            "model_class": model_class,
            "revision": revision,
            "trust_remote_code": trust_remote_code,
            "dtype": dtype,
            "device": device,
            **spec_options,
        }
        given = {k: v for k, v in given.items() if v is not None}
        self.task, self.spec, loaded = _resolve(source, task, given)
        self.backend = backend
        self.max_tokens = max_tokens
        self.max_rows = max_rows
        self._engines: dict[str, Any] = {}
        self._fast: dict[str, Any] = {}  # task -> FastPath, chosen on first use
        self._progress = progress
        self.cache_dir = cache_dir
        if loaded is None:
            from tether.models.loading import load

            loaded = load(self.spec)
        self.loaded: LoadedModel = loaded
        self.spec = loaded.spec  # as loaded: a hub source's revision pinned

    @property
    def model_id(self) -> str:
        return self.loaded.model_id

    def fast_path(self, task: str = "embed") -> Any:
        """What runs ``task``'s forward pass, and why (a ``FastPath``: ``choice`` is
        ``"exact"`` or ``"pytorch"``, ``reason`` one line). Chosen on first use of the
        task (building and verifying the graph then, once per machine) and kept."""
        fast = self._fast.get(task)
        if fast is None:
            from tether.optimization.fastpath import FastPath, fast_backend

            if self.loaded.optimized is not None:
                fast = FastPath(None, "bundle", "the optimised bundle's own verified graph")
            else:
                fast = fast_backend(
                    self.loaded, task, self.backend, cache_dir=self.cache_dir, progress=self._say
                )
                logger.info("%s %s: %s", self.model_id, task, fast.reason)
            self._fast[task] = fast
        return fast

    def _say(self, line: str) -> None:
        if callable(self._progress):
            self._progress(line)
        elif self._progress:
            print(f"tether: {line} ...", file=sys.stderr, flush=True)

    @property
    def backend_reason(self) -> str:
        """What runs this Model's default task and why, in one line (chooses if needed)."""
        return str(self.fast_path(self.task).reason)

    def __repr__(self) -> str:
        what = f"task={self.spec.task!r}" if self.spec.task else f"class={self.spec.model_class!r}"
        return (
            f"tether.Model({self.spec.source!r}, {what}, device={self.spec.device!r}, "
            f"dtype={self.spec.dtype!r}, backend={self.backend!r})"
        )

    def __reduce__(self) -> Any:
        return (
            _rebuild_model,
            (
                self.spec.to_json(None),
                self.task,
                self.backend,
                self.max_tokens,
                self.max_rows,
                None if self.cache_dir is None else str(self.cache_dir),
            ),
        )

    # -- tasks ------------------------------------------------------------------------

    def encode(
        self,
        inputs: Iterable[Any] | Records | str,
        *,
        errors: str = "collect",
        modality: str | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> Embeddings:
        """Embed every input with the model's own pooling; one row per input that ran.

        Args:
            inputs: texts (a list or any iterable; a lone string is one text), image
                paths with ``modality="image"``, or a ``Records`` file.
            errors: ``"collect"`` (default): failures ride on the result's ``errors``;
                ``"raise"``: raise ``FailedRecordsError`` if any input failed.
            modality: ``"text"`` or ``"image"`` (default: text, or image for a vision
                model), as ``tether embed --modality``.
        Returns:
            Embeddings: a ``(rows, dim)`` float32 array with ``positions`` and ``errors``.
        """
        chunks = list(self.encode_stream(inputs, errors=errors, modality=modality,
                                         chunk_size=chunk_size))  # fmt: skip
        if len(chunks) == 1:
            return chunks[0]
        blocks = [c.array for c in chunks if len(c)]
        vectors = np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float32)
        labels = [x for c in chunks for x in (c.labels or [])]
        return Embeddings.build(
            vectors,
            [p for c in chunks for p in c.positions.tolist()],
            [e for c in chunks for e in c.errors],
            sum(c.records for c in chunks),
            ids=[i for c in chunks for i in c.ids],
            labels=labels if chunks and chunks[0].labels is not None else None,
            truncated=sum(c.truncated for c in chunks),
            model_id=self.model_id,
        )

    def encode_stream(
        self,
        inputs: Iterable[Any] | Records | str,
        *,
        errors: str = "collect",
        modality: str | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> Iterator[Embeddings]:
        """``encode`` for inputs of any size: one ``Embeddings`` per ``chunk_size``
        inputs, positions counted from the start of the whole input. With
        ``errors="raise"`` the first chunk with a failure raises."""
        options = {"modality": modality} if modality else {}
        has_labels = isinstance(inputs, Records) and inputs.label_column is not None
        for chunk in self._stream("embed", inputs, options, errors, chunk_size):
            yield Embeddings.build(
                np.stack(chunk.values) if chunk.values else np.zeros((0, 0), np.float32),
                chunk.positions,
                chunk.errors,
                chunk.records,
                ids=chunk.ids,
                labels=chunk.labels if has_labels else None,
                truncated=chunk.truncated,
                model_id=self.model_id,
            )

    def classify(
        self, inputs: Iterable[Any] | Records | str, *, errors: str = "collect"
    ) -> Outputs:
        """Label every text with the model's sequence-classification head (load it with
        ``task="classify"``, or a classifier checkpoint as its own class). Each value
        is ``{"label", "score", "scores"}``."""
        return self.run("classify", inputs, errors=errors)

    def fill_mask(
        self, inputs: Iterable[Any] | Records | str, *, top_k: int = 5, errors: str = "collect"
    ) -> Outputs:
        """The ``top_k`` candidates for each mask token of every text (load a masked-LM
        with ``task="fill-mask"``, or one as its own class)."""
        return self.run("fill-mask", inputs, errors=errors, top_k=top_k)

    def run(
        self,
        task: str,
        inputs: Iterable[Any] | Records | str,
        *,
        errors: str = "collect",
        chunk_size: int = CHUNK_SIZE,
        **options: Any,
    ) -> Outputs:
        """Run ``task`` over every input: a tether task (``embed``, ``classify``,
        ``fill-mask``, ``tensor``), or the ``pipeline()`` task this Model was built with
        (``Model(source, task="image-classification").run("image-classification",
        paths)``). ``options`` are the task's (``top_k``...) or the pipeline's call
        arguments (``max_new_tokens``...)."""
        chunks = list(self.run_stream(task, inputs, errors=errors, chunk_size=chunk_size,
                                      **options))  # fmt: skip
        return _join(chunks, task, self.model_id)

    def run_stream(
        self,
        task: str,
        inputs: Iterable[Any] | Records | str,
        *,
        errors: str = "collect",
        chunk_size: int = CHUNK_SIZE,
        **options: Any,
    ) -> Iterator[Outputs]:
        """``run`` for inputs of any size: one ``Outputs`` per ``chunk_size`` inputs."""
        engine_task = self._engine_task(task)
        has_labels = isinstance(inputs, Records) and inputs.label_column is not None
        for chunk in self._stream(engine_task, inputs, options, errors, chunk_size):
            yield Outputs(
                task,
                chunk.values,
                chunk.positions,
                tuple(chunk.errors),
                chunk.records,
                chunk.ids,
                chunk.labels if has_labels else None,
                chunk.truncated,
                self.model_id,
            )

    # -- machinery --------------------------------------------------------------------

    def _engine_task(self, task: str) -> str:
        """The engine task that runs ``task`` on this model, or a TaskError."""
        from tether.inference.tasks import TASKS

        if task in TASKS:
            return task
        loaded_task = self.spec.task
        if loaded_task is not None:
            from tether.models.spec import resolve_task

            if resolve_task(task)[0] == resolve_task(loaded_task)[0]:
                return "pipeline"
        raise TaskError(
            f"This Model was loaded for {loaded_task or self.task!r}, not the pipeline() "
            f"task {task!r}.",
            f"Build Model(source, task={task!r}) to run it; tether's own tasks are "
            f"{', '.join(sorted(TASKS))}.",
            task=task,
        )

    def _engine(self, task: str, options: dict[str, Any]) -> Any:
        """One Engine per task and options, built on first use and kept."""
        from tether.inference.engine import Engine

        key = json.dumps([task, options], sort_keys=True, default=repr)
        engine = self._engines.get(key)
        if engine is None:
            fast = self.fast_path(task)
            engine = Engine(
                self.loaded,
                task,
                max_tokens=self.max_tokens,
                max_rows=self.max_rows,
                backend=fast.backend,
                **options,
            )
            self._engines[key] = engine
        return engine

    def _stream(
        self,
        task: str,
        inputs: Iterable[Any] | Records | str,
        options: dict[str, Any],
        errors: str,
        chunk_size: int,
    ) -> Iterator[_Chunk]:
        from tether.inference.results import Prediction, RecordError

        check_errors(errors)
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise SpecError(
                f"chunk_size must be a positive integer, got {chunk_size!r}.",
                "Pass e.g. chunk_size=4096.",
                field="chunk_size",
            )
        if isinstance(inputs, Records):
            inputs.require_file()  # before the engine starts
        engine = self._engine(task, options)
        pending: list[list[_Item]] = []

        def values() -> Iterator[list[Any]]:
            for chunk in _chunked(_items(inputs), chunk_size):
                pending.append(chunk)
                yield [item.value for item in chunk if item.problem is None]

        counted = engine.stats["truncated"]
        for outcomes in engine.stream_chunks(values()):
            chunk = pending.pop(0)
            results = iter(outcomes)
            done = _Chunk([], [], [], [], [], len(chunk), 0)
            for item in chunk:
                outcome = None if item.problem else next(results)
                if item.problem is not None or isinstance(outcome, RecordError):
                    kind, reason = item.problem or (outcome.kind, outcome.reason)  # type: ignore[union-attr]
                    done.errors.append(
                        FailedRecord(item.position, kind, reason, item.value, item.line, item.id)
                    )
                    continue
                assert isinstance(outcome, Prediction)
                done.values.append(outcome.inference)
                done.positions.append(item.position)
                done.ids.append(item.id)
                done.labels.append(item.label or "")
            done.truncated, counted = engine.stats["truncated"] - counted, engine.stats["truncated"]
            if errors == "raise" and done.errors:
                raise _failed(done.errors, done.records)
            yield done


def _items(inputs: Iterable[Any] | Records | str) -> Iterator[_Item]:
    """Every input as an ``_Item``, numbered from 0, problems found before the model
    (unreadable records, missing labels) already attached."""
    if isinstance(inputs, Records):
        for position, (record, label, label_problem) in enumerate(inputs.read_labelled()):
            problem = None
            if record.problem is not None:
                problem = ("unreadable", record.problem)
            elif label_problem is not None:
                problem = ("no-label", label_problem)
            yield _Item(position, record.value, record.line, record.id, label, problem)
        return
    if isinstance(inputs, str):
        inputs = [inputs]  # one text, not its characters
    elif isinstance(inputs, Path):
        raise SpecError(
            f"inputs is a path ({str(inputs)!r}); a file's records are read through Records.",
            f"Pass Records({str(inputs)!r}) (with text_column=, id_column= as needed).",
            field="inputs",
        )
    elif not isinstance(inputs, Iterable) or isinstance(inputs, bytes | dict):
        raise SpecError(
            f"inputs must be a list (or iterable) of inputs or a Records, got "
            f"{type(inputs).__name__}.",
            "Pass a list of texts, e.g. encode(['a text', 'another']).",
            field="inputs",
        )
    for position, value in enumerate(inputs):
        yield _Item(position, value, id=position)


def _chunked(items: Iterator[_Item], size: int) -> Iterator[list[_Item]]:
    chunk: list[_Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _join(chunks: list[Outputs], task: str, model_id: str) -> Outputs:
    if len(chunks) == 1:
        return chunks[0]
    labelled = bool(chunks) and chunks[0].labels is not None
    return Outputs(
        task,
        [v for c in chunks for v in c.values],
        [p for c in chunks for p in c.positions],
        tuple(e for c in chunks for e in c.errors),
        sum(c.records for c in chunks),
        [i for c in chunks for i in c.ids],
        [x for c in chunks for x in (c.labels or [])] if labelled else None,
        sum(c.truncated for c in chunks),
        model_id,
    )


def _failed(failures: list[FailedRecord], records: int) -> FailedRecordsError:
    first = failures[0]
    where = f"position {first.position}" + (f" (line {first.line})" if first.line else "")
    return FailedRecordsError(
        f"{len(failures)} of {records} input(s) could not be run; the first, at {where}: "
        f"{first.kind}: {first.reason}.",
        "Fix those inputs, or pass errors='collect' to get the good rows with the "
        "failures beside them (.errors, with their positions).",
        failures=tuple(failures),
        records=records,
    )


def check_errors(errors: str) -> None:
    if errors not in ERRORS:
        raise SpecError(
            f"errors must be 'collect' or 'raise', got {errors!r}.",
            "Pass errors='collect' (failures on the result) or errors='raise'.",
            field="errors",
        )


def check_backend(backend: str) -> None:
    """Refuse an unknown backend before anything loads (the fast path's own check)."""
    from tether.optimization.fastpath import check_backend as check

    check(backend)


def _resolve(
    source: Any, task: str | None, given: dict[str, Any]
) -> tuple[str, ModelSpec, LoadedModel | None]:
    """(default task, spec, loaded model or None) from the Model's arguments.

    ``task`` names a tether task (sets the default class, when the spec names none) or
    a pipeline() task (replaces the spec's class); a ``model_class`` keyword replaces a
    spec's class or task too, so the last word is the one the user gave.
    """
    from tether.inference.tasks import default_model_class

    if task is not None and (not isinstance(task, str) or not task.strip()):
        raise SpecError(f"task must be a task name, got {task!r}.", "Pass e.g. task='embed'.")
    pipeline_task = task if task is not None and task not in TETHER_TASKS else None
    if isinstance(source, LoadedModel):
        if given or pipeline_task:
            named = ", ".join(sorted(given)) or f"task={task!r}"
            raise SpecError(
                f"Model(loaded_model) got {named}, but the model is already loaded.",
                "Drop those keywords, or pass the ModelSpec (or source) to load it anew.",
            )
        return task or ("pipeline" if source.spec.task else "embed"), source.spec, source
    if isinstance(source, ModelSpec):
        base = source.to_dict()
    elif isinstance(source, str | Path) and str(source).strip():
        source = str(source)
        base = {"source": source}
        if source.endswith(".json") and Path(source).is_file():
            base = ModelSpec.load_file(source).to_dict()
    else:
        raise SpecError(
            f"source must be a model source, got {source!r}.",
            "Pass a hub repo id, a local directory, 'minilm', or a ModelSpec.",
        )
    if pipeline_task or "model_class" in given:
        base.update(model_class=None, task=None)
    base.update(given)
    if pipeline_task:
        base["task"] = pipeline_task
    elif not base.get("model_class") and not base.get("task"):
        chosen = None if task in (None, "embed") else default_model_class(task)
        if chosen is None:
            # embed reads the base model's hidden states, so the checkpoint's own
            # class (what `tether embed` loads) drops no weights, head or not.
            from tether.models.inspection import inspect

            chosen = inspect(str(base["source"]), base.get("revision")).suggested_class
        base["model_class"] = chosen
    spec = ModelSpec.from_dict(base)
    return (
        (task if task and not pipeline_task else "pipeline" if spec.task else "embed"),
        spec,
        None,
    )


def _rebuild_model(
    spec_json: str,
    task: str,
    backend: str,
    max_tokens: int | None,
    max_rows: int | None,
    cache_dir: str | None = None,
) -> Model:
    return Model(
        ModelSpec.from_json(spec_json),
        task=task if task in TETHER_TASKS else None,
        backend=backend,
        max_tokens=max_tokens,
        max_rows=max_rows,
        cache_dir=cache_dir,
    )


def embed(
    inputs: Iterable[Any] | Records | str,
    model: str | Path | ModelSpec | LoadedModel | Model = "minilm",
    *,
    errors: str = "collect",
    **model_options: Any,
) -> Embeddings:
    """One line to vectors: ``tether.embed(["a text", "another"])``.

    Loads ``model`` (default: the shipped all-MiniLM-L6-v2) with ``model_options``
    (``Model``'s keywords) and encodes ``inputs``. Each call loads the model: keep a
    ``Model`` to embed more than once.
    """
    if isinstance(model, Model):
        if model_options:
            raise SpecError(
                f"embed() got a Model and {', '.join(sorted(model_options))}.",
                "Pass those keywords to Model(...), or pass a source instead of a Model.",
            )
        return model.encode(inputs, errors=errors)
    return Model(model, **model_options).encode(inputs, errors=errors)
