"""`tether beam run`: a Beam pipeline from the command line (read -> infer -> write).

apache_beam is imported only when the command runs, so `tether --help` works without
the extra; a missing extra is an error naming `pip install 'tether[beam]'`.
"""

from __future__ import annotations

from typing import Any

import click

from tether.cli.options import (
    build_spec,
    pipeline_arg_option,
    spec_options,
    split_task,
    task_call_options,
)

RUNNING_MODES = ("in_memory", "multi_threading", "multi_processing")


def register(group: click.Group) -> None:
    """Add this feature's commands to the `tether` group."""
    group.add_command(beam_group)


@click.group("beam")
def beam_group() -> None:
    """Run models in Apache Beam (DirectRunner, Dataflow, Flink, Spark)."""


@beam_group.command(
    "run", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.argument("source", required=False)
@spec_options(default_class=None)
@click.option("-i", "--input", "input_path", required=True, help="File or glob to read.")
@click.option(
    "--input-format",
    type=click.Choice(["text", "jsonl", "csv", "parquet"]),
    default=None,
    help="Input format (default: from the extension).",
)
@click.option("--text-column", default=None, help="Column with the text (default: text).")
@click.option("--id-column", default=None, help="Column with record ids, kept on every output.")
@click.option("-o", "--output", required=True, help="Output path (.parquet or .jsonl).")
@click.option(
    "--output-format",
    type=click.Choice(["parquet", "jsonl"]),
    default=None,
    help="Output format (default: from the extension).",
)
@click.option(
    "--errors",
    "errors_path",
    default=None,
    help="JSONL file for failed records (default: OUTPUT's name + .errors.jsonl).",
)
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=None,
    help="fill-mask/pipeline: candidates kept.",
)
@pipeline_arg_option
@click.option(
    "--max-tokens", type=click.IntRange(min=1), default=None, help="Token budget per forward pass."
)
@click.option(
    "--batch-records",
    type=click.IntRange(min=1),
    default=None,
    help="Records per Beam batch (default 2048).",
)
@click.option("--max-rows", type=click.IntRange(min=1), default=None, help="Rows per forward pass.")
@click.option(
    "--num-shards",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Output files; 1 writes exactly OUTPUT, 0 lets the runner choose.",
)
@click.option("--runner", default="DirectRunner", show_default=True, help="Beam runner.")
@click.option(
    "--direct-num-workers", type=click.IntRange(min=1), default=None, help="DirectRunner workers."
)
@click.option(
    "--direct-running-mode",
    type=click.Choice(RUNNING_MODES),
    default=None,
    help="DirectRunner mode (multi_processing uses one process per worker).",
)
@click.option("--no-wait", is_flag=True, help="Submit the job and return (remote runners).")
@click.pass_context
def run_cmd(
    ctx: click.Context,
    source: str | None,
    spec_values: dict[str, Any],
    input_path: str,
    input_format: str | None,
    text_column: str | None,
    id_column: str | None,
    output: str,
    output_format: str | None,
    errors_path: str | None,
    top_k: int | None,
    pipeline_args: tuple[str, ...],
    max_tokens: int | None,
    batch_records: int | None,
    max_rows: int | None,
    num_shards: int,
    runner: str,
    direct_num_workers: int | None,
    direct_running_mode: str | None,
    no_wait: bool,
) -> None:
    """Run SOURCE over a file in a Beam pipeline; failed records go to --errors.

    --task is a tether task (embed, classify, fill-mask; default embed) or any
    pipeline() task (e.g. text-classification), run through transformers.pipeline().
    Options this command does not know (e.g. --project, --region, --temp_location,
    --requirements_file, --sdk_container_image) are passed to Beam's PipelineOptions.
    """
    from tether.beam import HANDLERS
    from tether.beam.io import OUTPUT_FORMATS
    from tether.beam.pipeline import JobConfig, run, unknown_pipeline_args
    from tether.inference.io import default_errors_path, guess_format
    from tether.inference.records import Records

    extra_args = list(ctx.args)
    unknown = unknown_pipeline_args(extra_args)
    if unknown:
        raise click.UsageError(
            f"Unknown option(s): {' '.join(unknown)}. Options not listed in "
            "`tether beam run --help` must be Beam pipeline options (e.g. --temp_location)."
        )
    records = Records(input_path, input_format, text_column, id_column)
    tether_task, spec_values = split_task(spec_values.get("task"), spec_values)
    spec = build_spec(source, spec_values)

    handler_kwargs: dict[str, Any] = {}
    if max_tokens:
        handler_kwargs["max_tokens"] = max_tokens
    if batch_records:
        handler_kwargs["max_batch_records"] = batch_records
    if max_rows:
        handler_kwargs["max_rows"] = max_rows
    call_options = task_call_options(tether_task, pipeline_args, top_k)
    if tether_task == "pipeline" and call_options:
        handler_kwargs["pipeline_kwargs"] = call_options
    else:
        handler_kwargs.update(call_options)  # fill-mask's top_k
    handler = HANDLERS[tether_task](spec, **handler_kwargs)

    job = JobConfig(
        records=records,
        output=output,
        output_format=output_format or guess_format(output, OUTPUT_FORMATS, "--output-format"),
        errors=errors_path or default_errors_path(output),
        num_shards=num_shards,
    )
    if not any("://" in p or "*" in p for p in (records.path, job.output, job.errors)):
        from tether.inference.runner import refuse_clashes

        refuse_clashes(records.path, job.output, job.errors, job.output_format)
    flags = ["--runner", runner]
    if direct_num_workers is not None:
        flags += ["--direct_num_workers", str(direct_num_workers)]
    if direct_running_mode is not None:
        flags += ["--direct_running_mode", direct_running_mode]
    _make_local_parents(job.output, job.errors)
    summary = run(handler, job, flags + extra_args, wait=not no_wait)
    if no_wait:
        click.echo(f"submitted to {runner}: {summary.state}")
        return
    click.echo(
        f"{runner}: read {summary.records} records; wrote {summary.written} to {job.output}, "
        f"{summary.errors} errors to {job.errors} ({summary.truncated} truncated)"
    )
    if not summary.balanced:
        raise click.ClickException(
            f"the counts do not add up: read {summary.records} != written {summary.written} + "
            f"errors {summary.errors}; the runner may not report committed metrics."
        )


def _make_local_parents(*paths: str) -> None:
    from pathlib import Path

    for path in paths:
        if "://" not in path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
