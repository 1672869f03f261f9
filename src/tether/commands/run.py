"""`tether run` and `tether embed`: a model over a file, with progress, errors and resume."""

from __future__ import annotations

from typing import Any

import click

from tether.cli import build_spec, spec_options

_DEFAULT_CLASS = {
    "embed": "AutoModel",
    "classify": "AutoModelForSequenceClassification",
    "fill-mask": "AutoModelForMaskedLM",
}


def _run_options(func: Any) -> Any:
    options = [
        click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False)),
        click.option(
            "-o",
            "--output",
            default=None,
            help="Output file: .parquet (default), .jsonl or .npy (embeddings).",
        ),
        click.option(
            "-m",
            "--model",
            "source",
            default="minilm",
            show_default=True,
            help="Model source: directory, hub repo id, or `minilm` (shipped).",
        ),
        click.option(
            "--input-format",
            type=click.Choice(["text", "jsonl", "csv", "parquet"]),
            default=None,
            help="Default: from the file extension.",
        ),
        click.option(
            "--output-format",
            type=click.Choice(["parquet", "jsonl", "npy"]),
            default=None,
            help="Default: from the output extension.",
        ),
        click.option(
            "--text-column", default=None, help="Column/field with the text (default text)."
        ),
        click.option("--id-column", default=None, help="Column/field kept as the record id."),
        click.option(
            "--errors",
            "errors_path",
            default=None,
            help="Where bad records go (default OUTPUT.errors.jsonl).",
        ),
        click.option(
            "--chunk-size",
            type=int,
            default=2048,
            show_default=True,
            help="Records per chunk (memory and resume granularity).",
        ),
        click.option(
            "--max-tokens", type=int, default=None, help="Token budget per batch (padded tokens)."
        ),
        click.option("--max-batch-size", type=int, default=None, help="Records per batch cap."),
        click.option("--keep-input", is_flag=True, help="Copy the input text into each row."),
        click.option("--resume", is_flag=True, help="Continue an interrupted run."),
        click.option("--overwrite", is_flag=True, help="Replace existing output."),
        click.option("--no-progress", is_flag=True, help="Hide the progress bar."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run(
    task: str,
    spec_values: dict[str, Any],
    source: str,
    input_path: str,
    output: str | None,
    task_options: dict[str, Any],
    **kw: Any,
) -> None:
    from pathlib import Path

    from tether.loading import load
    from tether.runner import RunConfig, run_file

    spec_values = dict(spec_values, default_class=_DEFAULT_CLASS.get(task, "AutoModel"))
    if spec_values.get("spec_file") and source == "minilm":
        source = None  # type: ignore[assignment]  # the spec file names the model
    spec = build_spec(source, spec_values)
    if spec.task and task == "embed":
        task = "pipeline"
    output = output or str(Path(input_path).with_suffix("")) + f".{task}.parquet"
    config = RunConfig(
        input=input_path,
        output=output,
        task=task,
        task_options=task_options,
        input_format=kw["input_format"],
        output_format=kw["output_format"],
        text_column=kw["text_column"],
        id_column=kw["id_column"],
        errors=kw["errors_path"],
        chunk_size=kw["chunk_size"],
        max_tokens=kw["max_tokens"],
        max_batch_size=kw["max_batch_size"],
        keep_input=kw["keep_input"],
    )
    config.resolved()  # fail on bad formats before the model loads
    loaded = load(spec)
    summary = run_file(
        loaded,
        config,
        resume=kw["resume"],
        overwrite=kw["overwrite"],
        progress=not kw["no_progress"],
    )
    click.echo(
        f"wrote {summary.output} ({summary.written} rows); "
        f"errors in {summary.errors_path} ({summary.errors})",
        err=True,
    )
    click.echo(summary.line())


def register(group: click.Group) -> None:
    """Add `tether run` and `tether embed`."""

    @group.command("run")
    @_run_options
    @click.option(
        "--task",
        "engine_task",
        type=click.Choice(["embed", "classify", "fill-mask"]),
        default="embed",
        show_default=True,
        help="What to compute. For any pipeline() task use --pipeline TASK.",
    )
    @click.option("--top-k", type=int, default=None, help="fill-mask/pipeline: candidates kept.")
    @spec_options(default_class=None, task_flag="--pipeline")
    def run_cmd(
        engine_task: str,
        top_k: int | None,
        spec_values: dict[str, Any],
        source: str,
        input_path: str,
        output: str | None,
        **kw: Any,
    ) -> None:
        """Run a model over INPUT (text, JSONL, CSV, Parquet) and write results.

        Bad records go to an errors file with their line number and reason; the
        summary shows records in = written + errors. An interrupted run continues
        with --resume and writes the same output as an uninterrupted one.
        """
        task_options = {"top_k": top_k} if top_k else {}
        _run(engine_task, spec_values, source, input_path, output, task_options, **kw)

    @group.command("embed")
    @_run_options
    @spec_options(default_class="AutoModel")
    def embed_cmd(
        spec_values: dict[str, Any], source: str, input_path: str, output: str | None, **kw: Any
    ) -> None:
        """Embed every text in INPUT with the model's own pooling (default model: minilm)."""
        _run("embed", spec_values, source, input_path, output, {}, **kw)
