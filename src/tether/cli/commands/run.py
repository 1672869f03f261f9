"""`tether run` and `tether embed`: a model over a file, with progress, errors and resume."""

from __future__ import annotations

from typing import Any

import click

from tether.cli.options import (
    OWN_CLASS,
    build_spec,
    pipeline_arg_option,
    spec_options,
    split_task,
    task_call_options,
)


def _run_options(func: Any) -> Any:
    options = [
        click.argument("source", required=False),
        click.option(
            "-i",
            "--input",
            "input_path",
            required=True,
            type=click.Path(dir_okay=False),
            help="File to read: text (one record per line), JSONL, CSV or Parquet.",
        ),
        click.option(
            "-o",
            "--output",
            default=None,
            help="Output: .parquet, .jsonl or .npy (embeddings). "
            "Default: INPUT's name + .TASK.parquet.",
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
            "--text-column", default=None, help="Column/field with the text (default: text)."
        ),
        click.option("--id-column", default=None, help="Column/field kept as the record id."),
        click.option(
            "--errors",
            "errors_path",
            default=None,
            help="Where bad records go (default: OUTPUT without its extension + .errors.jsonl).",
        ),
        click.option(
            "--chunk-size",
            type=click.IntRange(min=1),
            default=2048,
            show_default=True,
            help="Records per chunk (memory and resume granularity).",
        ),
        click.option(
            "--max-tokens",
            type=click.IntRange(min=1),
            default=None,
            help="Padded tokens per forward pass (default: by device).",
        ),
        click.option(
            "--max-rows",
            type=click.IntRange(min=1),
            default=None,
            help="Records per forward pass cap (default: by device).",
        ),
        click.option("--keep-input", is_flag=True, help="Copy the input text into each row."),
        click.option("--resume", is_flag=True, help="Continue an interrupted run."),
        click.option("--overwrite", is_flag=True, help="Replace existing output."),
        click.option("--no-progress", is_flag=True, help="Hide the progress bar."),
        click.option(
            "--backend",
            type=click.Choice(["auto", "exact", "pytorch"]),
            default="auto",
            show_default=True,
            help="auto: on a CPU, the verified exact ONNX graph (built and verified on first "
            "use, then cached per model and machine), else PyTorch; exact: that graph or "
            "an error; pytorch: eager PyTorch.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run(
    task: str,
    spec_values: dict[str, Any],
    source: str | None,
    input_path: str,
    output: str | None,
    task_options: dict[str, Any],
    **kw: Any,
) -> None:
    from pathlib import Path

    from tether.inference.records import Records
    from tether.inference.runner import RunConfig, run_file
    from tether.models.loading import load

    if not source and not spec_values.get("spec_file"):
        source = "minilm"
    spec = build_spec(source, spec_values)
    if spec.task:
        task = "pipeline"
    output = output or str(Path(input_path).with_suffix("")) + f".{task}.parquet"
    records = Records(
        input_path,
        format=kw["input_format"],
        text_column=kw["text_column"],
        id_column=kw["id_column"],
    )
    config = RunConfig(
        input=records,
        output=output,
        task=task,
        task_options=task_options,
        output_format=kw["output_format"],
        errors=kw["errors_path"],
        chunk_size=kw["chunk_size"],
        max_tokens=kw["max_tokens"],
        max_rows=kw["max_rows"],
        keep_input=kw["keep_input"],
    )
    config.resolved()  # fail on bad formats before the model loads
    loaded = load(spec)
    fast = _fast_path(loaded, task, kw["backend"])
    summary = run_file(
        loaded,
        config,
        resume=kw["resume"],
        overwrite=kw["overwrite"],
        progress=not kw["no_progress"],
        backend=fast.backend if fast else None,
    )
    click.echo(
        f"wrote {summary.output} ({summary.written} rows); "
        f"errors in {summary.errors_path} ({summary.errors})",
        err=True,
    )
    click.echo(summary.line())
    if fast is not None and kw["backend"] == "auto":
        from tether.optimization.fastpath import faster_levels_hint

        hint = faster_levels_hint()
        if hint:
            click.echo(f"note: {hint}", err=True)


def _fast_path(loaded: Any, task: str, backend: str) -> Any:
    """The fast path's choice for this run (None for an optimised bundle, which runs its
    own graph), said on stderr in one line."""
    if loaded.optimized is not None:
        return None
    from tether.optimization.fastpath import fast_backend

    fast = fast_backend(
        loaded, task, backend, progress=lambda line: click.echo(f"{line} ...", err=True)
    )
    click.echo(f"backend: {fast.reason}", err=True)
    return fast


def register(group: click.Group) -> None:
    """Add `tether run` and `tether embed`."""

    @group.command("run")
    @_run_options
    @pipeline_arg_option
    @click.option(
        "--top-k",
        type=click.IntRange(min=1),
        default=None,
        help="fill-mask/pipeline: candidates kept.",
    )
    @spec_options(default_class=None)
    def run_cmd(
        top_k: int | None,
        pipeline_args: tuple[str, ...],
        spec_values: dict[str, Any],
        source: str | None,
        input_path: str,
        output: str | None,
        **kw: Any,
    ) -> None:
        """Run model SOURCE (default: the shipped minilm) over a file and write results.

        --task is a tether task (embed, classify, fill-mask; default embed) or any
        pipeline() task (e.g. text-classification), run through transformers.pipeline().
        Bad records go to an errors file with their line number and reason; the
        summary shows records in = written + errors. An interrupted run continues
        with --resume and writes the same output as an uninterrupted one.
        """
        task, values = split_task(spec_values.get("task"), spec_values)
        task_options = task_call_options(task, pipeline_args, top_k)
        _run(task, values, source, input_path, output, task_options, **kw)

    @group.command("embed")
    @_run_options
    @click.option(
        "--modality",
        type=click.Choice(["text", "image"]),
        default=None,
        help="What the records are (default: text, or image for a vision-only model); "
        "'image' embeds image paths with a text-and-image model such as CLIP.",
    )
    @spec_options(default_class=OWN_CLASS)
    def embed_cmd(
        modality: str | None,
        spec_values: dict[str, Any],
        source: str | None,
        input_path: str,
        output: str | None,
        **kw: Any,
    ) -> None:
        """Embed every record in a file with SOURCE's own pooling (default: the shipped
        minilm): texts, or image paths for vision encoders and CLIP-style models."""
        if spec_values.get("task"):
            raise click.UsageError("`tether embed` runs the embed task; use `tether run --task`.")
        options = {"modality": modality} if modality else {}
        _run("embed", spec_values, source, input_path, output, options, **kw)
