"""The tether command line: thin wrappers over the library.

Errors print one clear message and the next step; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from tether.cli.options import TetherGroup, build_spec, spec_options


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
    from tether.models.inspection import format_report, inspect

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
    from tether.models.loading import load

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
    from tether.cli.commands import (
        beam,
        bundle,
        cluster,
        compare,
        demo,
        hub,
        models,
        optimize,
        run,
        share,
    )

    for module in (run, bundle, compare, beam, cluster, models, demo, optimize, hub, share):
        module.register(cli)


_register_feature_commands()


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="tether")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
