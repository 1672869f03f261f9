"""Beam ``ModelHandler``s that run tether's engine inside ``RunInference``.

A handler holds only a ``ModelSpec`` (plain, picklable data) plus a task name and its
options. The model is loaded by ``load_model`` on the worker, through the guarded
``tether.load``, so ``device='auto'`` is decided by the machine that runs it, not the
one that builds the pipeline.

Inside each Beam batch the engine sorts records by exact token length and runs them
in forward passes capped by a token budget, so variable-length text and tensors are
padded per forward pass, never to a fixed length.

A record the model cannot run on (empty, wrong type, no mask token...) is not dropped
and does not fail its batch: its ``PredictionResult.inference`` is a
``tether.inference.results.RecordError``. ``tether.beam.RunTether`` splits those into an errors
output; with plain ``RunInference`` use ``is_error(result)`` or ``SplitErrors``.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from apache_beam.metrics.metric import Metrics
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from tether.errors import SpecError, TaskError
from tether.inference.results import RecordError
from tether.models.spec import ModelSpec

#: Records per Beam batch, fixed by default. Large batches let the engine sort by length
#: inside each one; BatchElements' adaptive sizing (min < max) measured ~25% slower on
#: MiniLM with 2 cores (benchmarks/beam_throughput.py). A bundle's end still flushes.
DEFAULT_BEAM_BATCH_SIZE = 2048
METRICS_NAMESPACE = "tether"


class TetherModel:
    """What ``load_model`` returns: an Engine behind one method.

    With ``share_model_across_processes`` Beam hands ``run_inference`` a proxy to this
    object living in another process; a proxy forwards method calls only, so every
    result (outcomes and counters) comes back from ``predict`` and the examples are
    not sent back over the wire.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def predict(self, examples: Sequence[Any]) -> tuple[list[Any], dict[str, int], str]:
        """(per record: ('ok', inference) or ('error', (reason, kind))), counters, model_id."""
        before = dict(self.engine.stats)
        outcomes = self.engine.predict(list(examples))
        counts = {k: int(v - before.get(k, 0)) for k, v in self.engine.stats.items()}
        rows: list[Any] = [
            ("error", (o.reason, o.kind)) if isinstance(o, RecordError) else ("ok", o.inference)
            for o in outcomes
        ]
        return rows, counts, str(self.engine.model_id)


class TetherModelHandler(ModelHandler[Any, PredictionResult, TetherModel]):
    """Runs one tether task of one ``ModelSpec`` in ``RunInference``.

    Args:
        spec: how to load the model (pickled to workers; no secrets are in it).
        task: ``embed``, ``classify``, ``fill-mask``, ``pipeline`` or ``tensor``.
        task_options: options of the task (e.g. ``{"top_k": 3}`` for fill-mask).
        min_batch_records, max_batch_records: records per Beam batch (``BatchElements``'s
            ``min_batch_size``/``max_batch_size``);
            min defaults to max (a fixed size), which measured fastest.
        max_batch_weight: cap on a Beam batch's total length (characters of text,
            first-dimension length of tensors). Beam 2.77's ``BatchElements`` has no
            such argument (passing it raises TypeError); tether translates it into
            ``element_size_fn`` + weight-based sizes, which ``BatchElements`` honours.
        max_tokens, max_rows: the engine's token budget and row cap per
            forward pass inside a Beam batch (default: by the worker's device, see
            ``tether.inference.batching.BUDGETS``).
        large_model, model_copies: share one (or N) model copies across the worker's
            processes instead of one per process (Beam's ``MultiProcessShared``).
        env_vars: environment variables set on the worker before loading.
        metrics_namespace: namespace of RunInference's and tether's metrics.
        inference_fn: replaces the forward pass, as Beam's own handlers allow:
            ``inference_fn(model, inputs, device, inference_args) -> outputs`` (see
            ``tether.inference.tasks.base.InferenceFn``); pickled to the workers.
    """

    task_name: str = ""

    def __init__(
        self,
        spec: ModelSpec,
        task: str | None = None,
        *,
        task_options: Mapping[str, Any] | None = None,
        min_batch_records: int | None = None,
        max_batch_records: int = DEFAULT_BEAM_BATCH_SIZE,
        max_batch_weight: int | None = None,
        max_tokens: int | None = None,
        max_rows: int | None = None,
        large_model: bool = False,
        model_copies: int | None = None,
        env_vars: Mapping[str, str] | None = None,
        metrics_namespace: str = METRICS_NAMESPACE,
        inference_fn: Callable[..., Any] | None = None,
    ) -> None:
        if not isinstance(spec, ModelSpec):
            raise SpecError(
                f"A tether handler needs a ModelSpec, got {type(spec).__name__}.",
                "Pass tether.ModelSpec(source, model_class=...) or ModelSpec.load_file(path).",
            )
        task = task or self.task_name
        if not task:
            raise TaskError("No task given.", "Pass task='embed' (or classify, fill-mask...).")
        from tether.inference.tasks import TASKS

        if task not in TASKS:
            raise TaskError(
                f"Unknown task {task!r}.", f"Use one of: {', '.join(sorted(TASKS))}.", task=task
            )
        if min_batch_records is None:
            min_batch_records = max_batch_records
        if min_batch_records < 1 or max_batch_records < min_batch_records:
            raise SpecError(
                f"Bad Beam batch sizes: min {min_batch_records}, max {max_batch_records}.",
                "Use 1 <= min_batch_records <= max_batch_records.",
            )
        super().__init__(
            large_model=large_model, model_copies=model_copies, env_vars=dict(env_vars or {})
        )
        self._spec = spec
        self._task = task
        self._task_options = dict(task_options or {})
        if inference_fn is not None:
            self._task_options["inference_fn"] = inference_fn
        self._min_batch_records = min_batch_records
        self._max_batch_records = max_batch_records
        self._max_batch_weight = max_batch_weight
        self._max_tokens = max_tokens
        self._max_rows = max_rows
        self._metrics_namespace = metrics_namespace

    # -- what the handler runs ------------------------------------------------------

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    @property
    def task(self) -> str:
        return self._task

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._spec.model_id!r}, task={self._task!r})"

    # -- ModelHandler contract --------------------------------------------------------

    def load_model(self) -> TetherModel:
        """Load through tether's guards, on the worker (device 'auto' resolves here)."""
        from tether.inference.engine import Engine
        from tether.models.loading import load

        loaded = load(self._spec)
        engine = Engine(
            loaded,
            self._task,
            max_tokens=self._max_tokens,
            max_rows=self._max_rows,
            **self._task_options,
        )
        return TetherModel(engine)

    def run_inference(
        self,
        batch: Sequence[Any],
        model: TetherModel,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        rows, counts, model_id = model.predict(list(batch))
        if len(rows) != len(batch):  # the engine's contract; never trade it for silence
            raise RuntimeError(f"tether returned {len(rows)} outcomes for {len(batch)} records")
        namespace = self._metrics_namespace
        for name in ("truncated", "errors", "tokens", "duplicates"):
            if counts.get(name):
                Metrics.counter(namespace, _COUNTER_NAMES[name]).inc(counts[name])
        results = []
        for example, (status, payload) in zip(batch, rows, strict=True):
            if status == "error":
                payload = RecordError(example, payload[0], payload[1])
            results.append(PredictionResult(example, payload, model_id))
        return results

    def validate_inference_args(self, inference_args: dict[str, Any] | None) -> None:
        if inference_args:
            raise TaskError(
                f"tether handlers take no inference_args (got {sorted(inference_args)}).",
                "Pass task options to the handler instead, e.g. "
                "FillMaskHandler(spec, top_k=3); the device belongs in the spec.",
            )

    def batch_elements_kwargs(self) -> Mapping[str, Any]:
        """Arguments for Beam 2.77's ``BatchElements`` that it really accepts."""
        if self._max_batch_weight is None:
            return {
                "min_batch_size": self._min_batch_records,
                "max_batch_size": self._max_batch_records,
            }
        # BatchElements sizes batches in element_size_fn units when one is given.
        weight = self._max_batch_weight
        return {
            "min_batch_size": min(weight, self._min_batch_records),
            "max_batch_size": weight,
            "element_size_fn": record_weight,
        }

    def get_num_bytes(self, batch: Sequence[Any]) -> int:
        return sum(_num_bytes(example) for example in batch)

    def get_metrics_namespace(self) -> str:
        return self._metrics_namespace

    def update_model_path(self, model_path: str | None = None) -> None:
        """Point the spec at a new model (RunInference's side-input model refresh)."""
        if model_path:
            self._spec = self._spec.replace(source=str(model_path))


_COUNTER_NAMES = {
    "truncated": "truncated_records",
    "errors": "record_errors",
    "tokens": "tokens",
    "duplicates": "duplicate_records",
}


class TextEmbeddingHandler(TetherModelHandler):
    """Text -> one float32 vector per record (the model's own pooling)."""

    task_name = "embed"

    def __init__(self, spec: ModelSpec, **kwargs: Any) -> None:
        super().__init__(spec, "embed", **kwargs)


class TextClassificationHandler(TetherModelHandler):
    """Text -> {"label", "score", "scores"} from a sequence-classification head."""

    task_name = "classify"

    def __init__(self, spec: ModelSpec, **kwargs: Any) -> None:
        super().__init__(spec, "classify", **kwargs)


class FillMaskHandler(TetherModelHandler):
    """Text with mask token(s) -> top-k candidates per mask."""

    task_name = "fill-mask"

    def __init__(self, spec: ModelSpec, top_k: int = 5, **kwargs: Any) -> None:
        super().__init__(spec, "fill-mask", task_options={"top_k": top_k}, **kwargs)


class PipelineHandler(TetherModelHandler):
    """Any ``transformers.pipeline()`` task set in ``spec.task``; kwargs go to the call."""

    task_name = "pipeline"

    def __init__(
        self, spec: ModelSpec, pipeline_kwargs: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(spec, "pipeline", task_options=pipeline_kwargs, **kwargs)


class TensorHandler(TetherModelHandler):
    """One unbatched torch tensor per record (e.g. input_ids of shape (seq,)), any length.

    Records of different lengths are right-padded per forward pass with an attention
    mask; outputs are split per record and trimmed to its own length, as torch tensors.
    """

    task_name = "tensor"

    def __init__(self, spec: ModelSpec, **kwargs: Any) -> None:
        super().__init__(spec, "tensor", **kwargs)


class NumpyHandler(TensorHandler):
    """Like ``TensorHandler`` for numpy arrays; outputs come back as numpy arrays."""


class KeyedTensorHandler(TensorHandler):
    """One dict of tensors or arrays per record (``{"input_ids": ..., "attention_mask": ...}``).

    Unlike Beam's keyed-tensor handler, which ``torch.stack``s and so needs every
    record padded to one fixed length, records may differ in length.
    """


HANDLERS: dict[str, Callable[..., TetherModelHandler]] = {
    "embed": TextEmbeddingHandler,
    "classify": TextClassificationHandler,
    "fill-mask": FillMaskHandler,
    "pipeline": PipelineHandler,
    "tensor": TensorHandler,
}


def is_error(result: Any) -> bool:
    """True for a ``PredictionResult`` (or ``(key, PredictionResult)``) that failed."""
    if isinstance(result, tuple) and len(result) == 2 and not isinstance(result, PredictionResult):
        result = result[1]
    return isinstance(getattr(result, "inference", None), RecordError)


def record_weight(example: Any) -> int:
    """A record's contribution to a batch: characters of text, rows of a tensor."""
    if isinstance(example, tuple) and len(example) == 2:  # (key, example) under KeyedModelHandler
        example = example[1]
    if isinstance(example, str):
        return max(len(example), 1)
    if isinstance(example, dict):
        example = next(iter(example.values()), None)
    shape = getattr(example, "shape", None)
    if shape:
        return max(int(shape[0]), 1)
    return 1


def _num_bytes(example: Any) -> int:
    if isinstance(example, str):
        return len(example.encode("utf-8", errors="replace"))
    if isinstance(example, dict):
        return sum(_num_bytes(v) for v in example.values())
    nbytes = getattr(example, "nbytes", None)  # numpy
    if isinstance(nbytes, int):
        return nbytes
    if hasattr(example, "element_size") and hasattr(example, "nelement"):  # torch
        return int(example.element_size() * example.nelement())
    try:
        return len(pickle.dumps(example))
    except Exception:  # an unpicklable bad record still must not fail the metrics
        return 0
