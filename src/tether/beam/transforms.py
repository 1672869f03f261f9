"""``RunTether``: RunInference with every failed record in one errors PCollection.

Three things can fail, and each record that does lands in ``errors`` exactly once:

1. a record the task rejects (empty, wrong type, no mask...): the handler returns it
   with a ``RecordError`` inference, split out here;
2. a whole batch that raises (out of memory, a model bug): ``RunInference``'s
   dead-letter output (``with_exception_handling``) gives the batch, expanded here
   into one error per record;
3. under ``keyed=True``, an element that is not a ``(key, example)`` pair, which
   would otherwise fail ``KeyedModelHandler``'s whole batch.

So ``count in == len(predictions) + len(errors)`` always holds.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics.metric import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference

from tether.beam.handlers import METRICS_NAMESPACE, is_error
from tether.inference.results import RecordError

ERRORS = "errors"


class TetherOutputs(NamedTuple):
    """What ``RunTether`` returns: good results and failed records."""

    predictions: beam.PCollection  # PredictionResult, or (key, PredictionResult) when keyed
    errors: beam.PCollection  # RecordError, or (key, RecordError) when keyed


class RunTether(beam.PTransform):
    """``RunInference(handler).with_exception_handling()`` plus an errors output.

    Args:
        handler: a tether handler (or any ModelHandler whose bad records come back
            as ``RecordError`` inferences).
        keyed: the input is ``(key, example)`` pairs; keys are kept on both outputs.
        metrics_namespace: namespace of the ``records_in``/``predictions``/``errors``
            counters (defaults to the handler's).
    """

    def __init__(
        self, handler: ModelHandler, *, keyed: bool = False, metrics_namespace: str | None = None
    ) -> None:
        super().__init__()
        self._handler = handler
        self._keyed = keyed
        self._namespace = metrics_namespace or _namespace_of(handler)

    def expand(self, pcoll: beam.PCollection) -> TetherOutputs:
        handler: ModelHandler = KeyedModelHandler(self._handler) if self._keyed else self._handler
        namespace = self._namespace
        counted = pcoll | "CountIn" >> beam.Map(_count, namespace, "records_in")
        if self._keyed:
            checked = counted | "CheckKeyed" >> beam.ParDo(_CheckKeyed()).with_outputs(
                ERRORS, main="ok"
            )
            counted, not_keyed = checked.ok, checked[ERRORS]
        results, dlq = counted | "RunInference" >> RunInference(handler).with_exception_handling()
        split = results | "SplitErrors" >> beam.ParDo(_SplitErrors()).with_outputs(
            ERRORS, main="predictions"
        )
        failed_batches = dlq.failed_inferences | "BatchFailures" >> beam.FlatMap(
            _batch_failure_errors, self._keyed
        )
        error_parts = [split[ERRORS], failed_batches]
        for i, failed in enumerate([*dlq.failed_preprocessing, *dlq.failed_postprocessing]):
            error_parts.append(
                failed | f"StepFailures{i}" >> beam.Map(_record_failure_error, self._keyed)
            )
        if self._keyed:
            error_parts.append(not_keyed)
        errors = tuple(error_parts) | "AllErrors" >> beam.Flatten()
        predictions = split.predictions | "CountPredictions" >> beam.Map(
            _count, namespace, "predictions"
        )
        errors = errors | "CountErrors" >> beam.Map(_count, namespace, "errors")
        return TetherOutputs(predictions, errors)


class SplitErrors(beam.PTransform):
    """For plain ``RunInference`` output: tagged ``predictions`` and ``errors`` outputs."""

    def expand(self, pcoll: beam.PCollection) -> Any:
        return pcoll | beam.ParDo(_SplitErrors()).with_outputs(ERRORS, main="predictions")


class _SplitErrors(beam.DoFn):
    def process(self, result: Any) -> Any:
        if not is_error(result):
            yield result
            return
        if isinstance(result, tuple) and len(result) == 2 and not hasattr(result, "inference"):
            key, prediction = result
            yield beam.pvalue.TaggedOutput(ERRORS, (key, prediction.inference))
        else:
            yield beam.pvalue.TaggedOutput(ERRORS, result.inference)


class _CheckKeyed(beam.DoFn):
    def process(self, element: Any) -> Any:
        if isinstance(element, tuple | list) and len(element) == 2:
            yield tuple(element)
        else:
            error = RecordError(
                element,
                f"expected a (key, example) pair, got {type(element).__name__}",
                "not-keyed",
            )
            yield beam.pvalue.TaggedOutput(ERRORS, (None, error))


def _batch_failure_errors(failure: tuple[Any, Any], keyed: bool) -> list[Any]:
    """One error per record of a batch that raised in RunInference."""
    batch, (exc_type, exc_repr, _traceback) = failure
    reason = f"batch failed: {getattr(exc_type, '__name__', exc_type)}: {exc_repr}"
    return [_as_error(element, reason, "batch-failed", keyed) for element in batch]


def _record_failure_error(failure: tuple[Any, Any], keyed: bool) -> Any:
    element, (exc_type, exc_repr, _traceback) = failure
    reason = f"{getattr(exc_type, '__name__', exc_type)}: {exc_repr}"
    return _as_error(element, reason, "step-failed", keyed)


def _as_error(element: Any, reason: str, kind: str, keyed: bool) -> Any:
    if keyed and isinstance(element, tuple) and len(element) == 2:
        key, example = element
        return key, RecordError(example, reason, kind)
    if keyed:
        return None, RecordError(element, reason, kind)
    return RecordError(element, reason, kind)


def _count(element: Any, namespace: str, name: str) -> Any:
    Metrics.counter(namespace, name).inc()
    return element


def _namespace_of(handler: ModelHandler) -> str:
    try:
        return str(handler.get_metrics_namespace())
    except Exception:
        return METRICS_NAMESPACE
