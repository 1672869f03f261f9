"""The tether command line: thin wrappers over the library.

Errors print one clear message and the next step; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from tether.errors import TetherError

SPEC_OPTION_NAMES = (
    "spec_file",
    "model_class",
    "task",
    "revision",
    "trust_remote_code",
    "dtype",
    "device",
    "tokenizer",
    "max_length",
    "pooling",
    "normalize",
    "allow_new_weights",
    "allow_unused_weights",
    "allow_pickle",
)


class TetherGroup(click.Group):
    """A click group that turns TetherError into a one-line message and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TetherError as exc:
            if ctx.meta.get("tether.debug"):
                raise
            click.secho(f"error: {exc.message}", fg="red", err=True)
            click.echo(f"  -> {exc.hint}", err=True)
            ctx.exit(2)


def spec_options(default_class: str | None = "AutoModel") -> Callable[[Callable[..., Any]], Any]:
    """Options that build a ModelSpec; shared by every command that loads a model."""

    def decorate(func: Callable[..., Any]) -> Any:
        options = [
            click.option(
                "--spec",
                "spec_file",
                type=click.Path(dir_okay=False),
                help="Load options from a spec JSON file; other options override it.",
            ),
            click.option(
                "--class",
                "model_class",
                default=None,
                help=f"transformers model class (default: {default_class or 'by --task'}).",
            ),
            click.option("--task", default=None, help="A pipeline() task instead of a class."),
            click.option("--revision", default=None, help="Hub revision (branch, tag, commit)."),
            click.option(
                "--trust-remote-code",
                is_flag=True,
                default=None,
                help="Run the model's own code (auto_map). Review it first.",
            ),
            click.option(
                "--dtype",
                type=click.Choice(["float32", "float16", "bfloat16", "auto"]),
                default=None,
                help="Weights dtype (default float32).",
            ),
            click.option(
                "--device", default=None, help="cpu, cuda, cuda:N, mps or auto (default cpu)."
            ),
            click.option("--tokenizer", default=None, help="Tokenizer source if not the model's."),
            click.option("--max-length", type=int, default=None, help="Max tokens per input."),
            click.option(
                "--pooling",
                type=click.Choice(["mean", "cls", "max", "mean_sqrt_len", "last"]),
                default=None,
                help="Embedding pooling (default: the model's own config, else mean).",
            ),
            click.option(
                "--normalize/--no-normalize",
                default=None,
                help="L2-normalise embeddings (default: the model's own config).",
            ),
            click.option(
                "--allow-new-weights",
                is_flag=True,
                default=None,
                help="Allow newly initialised weights (e.g. a new head to fine-tune).",
            ),
            click.option(
                "--allow-unused-weights",
                is_flag=True,
                default=None,
                help="Allow checkpoint weights the class does not use.",
            ),
            click.option(
                "--allow-pickle",
                is_flag=True,
                default=None,
                help="Allow pickle (.bin/.pt) weights. They can run code.",
            ),
        ]
        for option in reversed(options):
            func = option(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in SPEC_OPTION_NAMES}
            kwargs["spec_values"] = dict(values, default_class=default_class)
            return func(*args, **kwargs)

        return wrapper

    return decorate


def build_spec(source: str | None, spec_values: dict[str, Any]) -> Any:
    """Merge a spec file (if any) with command-line options into a ModelSpec."""
    from tether.spec import ModelSpec

    values = dict(spec_values)
    default_class = values.pop("default_class")
    spec_file = values.pop("spec_file")
    base: dict[str, Any] = ModelSpec.load_file(spec_file).to_dict() if spec_file else {}
    if source:
        base["source"] = source
    if not base.get("source"):
        raise click.UsageError("Give a model SOURCE or --spec FILE.")
    for key, value in values.items():
        if value is not None:
            base[key] = value
    if values.get("task"):
        base["model_class"] = None
    elif values.get("model_class"):
        base["task"] = None
    if not base.get("model_class") and not base.get("task"):
        base["model_class"] = default_class
    return ModelSpec.from_dict(base)


@click.group(cls=TetherGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tether")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """tether: run Hugging Face models over data, and keep them exactly the same.

    Model SOURCE is a local directory, a Hugging Face repo id (from the cache when
    offline), or `minilm` for the shipped all-MiniLM-L6-v2.
    """
    ctx.meta["tether.debug"] = debug
    if not debug:
        _quiet_third_party()


def _quiet_third_party() -> None:
    """Hide transformers' weight-loading progress bars; tether reports load problems itself."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


@cli.command("inspect")
@click.argument("source")
@click.option("--revision", default=None, help="Hub revision (branch, tag, commit).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def inspect_cmd(source: str, revision: str | None, as_json: bool) -> None:
    """Report what a model is and needs, without running any of its code."""
    from tether.inspection import format_report, inspect

    report = inspect(source, revision)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(format_report(report))


@cli.command("spec")
@click.argument("source", required=False)
@spec_options()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the spec here instead of standard output.",
)
def spec_cmd(source: str | None, spec_values: dict[str, Any], output: str | None) -> None:
    """Write a ModelSpec JSON file from options (validated, nothing is loaded)."""
    spec = build_spec(source, spec_values)
    if output:
        spec.save(output)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(spec.to_json())


@cli.command("load")
@click.argument("source", required=False)
@spec_options()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def load_cmd(source: str | None, spec_values: dict[str, Any], as_json: bool) -> None:
    """Load a model through every guard and report what was loaded."""
    from tether.loading import load

    spec = build_spec(source, spec_values)
    loaded = load(spec)
    model = loaded.model
    summary = {
        "model_id": loaded.model_id,
        "class": type(model).__name__,
        "path": str(loaded.path),
        "device": str(loaded.device),
        "parameters": sum(p.numel() for p in model.parameters()),
        "max_length": loaded.max_length,
        "loading_info": loaded.loading_info,
        "spec": spec.to_dict(),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(
            f"loaded {summary['class']} from {summary['path']} on {summary['device']}: "
            f"{summary['parameters']:,} parameters, max_length {summary['max_length']}; "
            "all guards passed"
        )


def _register_feature_commands() -> None:
    from tether.commands import beam, bundle, compare, hub, run

    for module in (run, bundle, compare, beam, hub):
        module.register(cli)


_register_feature_commands()


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="tether")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
