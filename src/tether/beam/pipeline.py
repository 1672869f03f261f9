"""The pipeline behind ``tether beam run``: read -> RunInference -> write, plus errors.

Every record read ends up either in the output or in the errors file; the summary
returned by ``run`` says how many of each (from Beam metrics, so it holds on any
runner that reports committed or attempted counters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from tether.beam.handlers import TetherModelHandler
from tether.beam.io import RUN_NAMESPACE, ReadRecords, WriteRows, error_row, prediction_row
from tether.beam.transforms import RunTether
from tether.inference.records import Records
from tether.inference.results import RunSummary


@dataclass(frozen=True)
class JobConfig:
    """Where data comes from and goes to; the model and task live in the handler."""

    records: Records
    output: str
    output_format: str
    errors: str
    num_shards: int = 1


def build(pipeline: beam.Pipeline, handler: TetherModelHandler, job: JobConfig) -> None:
    """Add the read -> infer -> write steps to ``pipeline``."""
    read = pipeline | "Read" >> ReadRecords(job.records)
    outputs = read.records | "Infer" >> RunTether(handler, keyed=True)
    task = handler.task
    _ = (
        outputs.predictions
        | "ToRows" >> beam.Map(prediction_row, task, job.output_format)
        | "Write" >> WriteRows(job.output, job.output_format, task, job.num_shards)
    )
    _ = (
        (read.errors, outputs.errors)
        | "AllErrors" >> beam.Flatten()
        | "ErrorRows" >> beam.Map(error_row)
        | "WriteErrors" >> WriteRows(job.errors, "jsonl", task, job.num_shards)
    )


def unknown_pipeline_args(args: list[str]) -> list[str]:
    """The flags in ``args`` that are not Beam pipeline options: a typo must be an
    error, not an option Beam silently drops."""
    known = set(PipelineOptions([]).get_all_options(drop_default=False))
    return [a for a in args if a.startswith("-") and a.lstrip("-").split("=", 1)[0] not in known]


def run(
    handler: TetherModelHandler,
    job: JobConfig,
    options: PipelineOptions | list[str],
    *,
    wait: bool = True,
) -> RunSummary:
    """Build and run the job; with ``wait`` block until it ends and return its counts.

    ``options`` are PipelineOptions or the command-line flags to build them from.
    """
    if not isinstance(options, PipelineOptions):
        options = PipelineOptions(options)
    pipeline = beam.Pipeline(options=options)
    build(pipeline, handler, job)
    result = pipeline.run()
    if not wait:
        return RunSummary(state=str(result.state))
    result.wait_until_finish()
    counters = _counters(result, (RUN_NAMESPACE, handler.get_metrics_namespace()))
    return RunSummary(
        records=counters.get(f"{RUN_NAMESPACE}:read", 0),
        written=counters.get(f"{RUN_NAMESPACE}:written", 0),
        errors=counters.get(f"{RUN_NAMESPACE}:errors", 0),
        truncated=counters.get(f"{handler.get_metrics_namespace()}:truncated_records", 0),
        state=str(result.state),
        counters=counters,
    )


def _counters(result: Any, namespaces: tuple[str, ...]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for namespace in dict.fromkeys(namespaces):
        query = result.metrics().query(MetricsFilter().with_namespace(namespace))
        for counter in query["counters"]:
            value = counter.committed if counter.committed is not None else counter.attempted
            name = f"{counter.key.metric.namespace}:{counter.key.metric.name}"
            totals[name] = totals.get(name, 0) + int(value or 0)
    return totals
