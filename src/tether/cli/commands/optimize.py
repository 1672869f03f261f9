"""`tether optimize`: an optimised bundle that is provably still the model, or an error."""

from __future__ import annotations

import json
from typing import Any

import click


def register(group: click.Group) -> None:
    """Add `tether optimize` to the `tether` group."""
    from tether.cli.options import build_spec, spec_options, split_task

    @group.command("optimize")
    @click.argument("source")
    @click.argument("out_dir", type=click.Path(file_okay=False))
    @click.option(
        "--level",
        type=click.Choice(["exact", "bf16", "int8"]),
        default="exact",
        show_default=True,
        help="exact: fused float32 graph (max abs diff 1e-4, cosine 0.9999 on every text); "
        "int8: int8 weights (cosine 0.99 on every text, batch-invariant); bf16: bfloat16 "
        "products, under torch autocast or on OpenVINO (cosine 0.999 on every text; needs "
        "avx512_bf16 or amx_bf16).",
    )
    @click.option(
        "-i",
        "--texts",
        "texts_path",
        type=click.Path(dir_okay=False, exists=True),
        default=None,
        help="Your own texts (one per line, fortune file, or JSONL with 'text'): "
        "calibration and verification besides the probe texts.",
    )
    @click.option("--limit", type=click.IntRange(min=1), default=None, help="Use at most N texts.")
    @click.option(
        "--keep-fp32",
        multiple=True,
        metavar="MODULE",
        help="int8: never quantise this module (e.g. encoder.layer.5.output.dense); repeatable.",
    )
    @click.option(
        "--per-tensor",
        is_flag=True,
        help="int8: one scale per weight matrix instead of per output channel (int8 options "
        "with --level exact quantise all the same and are judged by the exact tolerance).",
    )
    @click.option(
        "--no-sweep", is_flag=True, help="int8: quantise everything, no sensitivity sweep."
    )
    @click.option(
        "--no-smooth",
        is_flag=True,
        help="int8: do not move activation outliers into the weights before quantising.",
    )
    @click.option(
        "--activations",
        type=click.Choice(["static", "dynamic"]),
        default=None,
        help="int8: static (default) calibrates activation scales on your texts and "
        "freezes them, so whole batches run; dynamic sets them per run, one text per run "
        "(static falls back to it when it fails the level).",
    )
    @click.option(
        "--batched",
        is_flag=True,
        help="int8 with --activations dynamic: run the graph on whole padded batches "
        "(dynamic activation scales then mix texts) instead of one text per run.",
    )
    @click.option(
        "--runtime",
        type=click.Choice(["auto", "onnxruntime", "openvino", "torch"]),
        default="auto",
        show_default=True,
        help="What runs the level: auto measures every installed runtime that can (ONNX "
        "Runtime or OpenVINO for graphs, torch autocast or OpenVINO for bf16) on your "
        "texts and keeps the fastest that passes; the evidence records the figures.",
    )
    @click.option("--overwrite", is_flag=True, help="Replace an existing bundle atomically.")
    @click.option("--json", "as_json", is_flag=True, help="Print the evidence as JSON.")
    @spec_options(default_class=None)
    def optimize_cmd(
        source: str,
        out_dir: str,
        level: str,
        texts_path: str | None,
        limit: int | None,
        keep_fp32: tuple[str, ...],
        per_tensor: bool,
        no_sweep: bool,
        no_smooth: bool,
        activations: str | None,
        batched: bool,
        runtime: str,
        overwrite: bool,
        as_json: bool,
        spec_values: dict[str, Any],
    ) -> None:
        """Write an optimised bundle of SOURCE to OUT_DIR, verified against SOURCE.

        --task is embed (default) or classify. The bundle is written only if the
        optimised graph passes LEVEL on the probe texts and your texts (-i), through
        the engine's batches and alone; its manifest carries the figures, the tolerance
        and the machine it was verified on. `tether embed OUT_DIR ...` runs it.
        """
        from tether.cli.errors import format_error
        from tether.errors import OptimizationMismatchError
        from tether.optimization import Int8Scheme, optimize
        from tether.parity.compare import read_texts

        task, values = split_task(spec_values.get("task"), spec_values)
        if task not in ("embed", "classify"):
            raise click.UsageError("tether optimize builds embed or classify graphs (--task).")
        spec = build_spec(source, values)
        texts = read_texts(texts_path, limit) if texts_path else None
        int8 = None
        int8_flags = {
            "--keep-fp32": bool(keep_fp32),
            "--per-tensor": per_tensor,
            "--no-sweep": no_sweep,
            "--no-smooth": no_smooth,
            "--activations": activations is not None,
            "--batched": batched,
        }
        given = [flag for flag, on in int8_flags.items() if on]
        if runtime == "torch" and level != "bf16":
            raise click.UsageError(
                "--runtime torch runs the model under autocast, which only --level bf16 "
                "does; graphs run on onnxruntime or openvino."
            )
        if given and level == "bf16":
            raise click.UsageError(
                f"{', '.join(given)} set how an int8 graph is built; --level bf16 builds no "
                "graph. Drop them, or use --level int8."
            )
        if batched and activations != "dynamic":
            raise click.UsageError(
                "--batched runs a dynamic int8 graph on padded batches; static scales "
                "always run batched. Add --activations dynamic, or drop --batched."
            )
        if given:
            int8 = Int8Scheme(
                activations=activations or Int8Scheme.activations,
                per_channel=not per_tensor,
                sweep=not no_sweep,
                smooth_alpha=None if no_smooth else Int8Scheme.smooth_alpha,
                one_text_per_run=not batched,
                keep_fp32=keep_fp32,
            )
        try:
            result = optimize(
                spec,
                out_dir,
                level=level,
                texts=texts,
                task=task,
                overwrite=overwrite,
                int8=int8,
                runtime=runtime,
            )
        except OptimizationMismatchError as exc:  # a check failed: exit 1, as compare does
            message, hint = format_error(exc)
            click.secho(message, fg="red", err=True)
            click.echo(hint, err=True)
            raise SystemExit(1) from None
        if as_json:
            click.echo(
                json.dumps({"bundle": str(result.path), **result.evidence.to_dict()}, indent=2)
            )
        else:
            click.echo(result.summary())
