"""`tether models compare`: several embedding models on the same data, one table."""

from __future__ import annotations

import json
from typing import Any

import click

from tether.cli.commands.cluster import parse_k
from tether.cli.errors import flags_for


def register(group: click.Group) -> None:
    """Add `tether models` and its `compare` command."""

    @group.group("models")
    def models_group() -> None:
        """Choose between models on your own data."""

    @models_group.command("compare")
    @click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
    @click.option(
        "-i",
        "--input",
        "input_path",
        required=True,
        type=click.Path(dir_okay=False),
        help="The records: text, JSONL, CSV or Parquet.",
    )
    @click.option(
        "--label-field", default=None, help="Field with known groups (for ARI, NMI, kNN)."
    )
    @click.option(
        "--k", "k", default=None, metavar="N|auto", help="k-means clusters (default: labels)."
    )
    @click.option("--seed", type=int, default=0, show_default=True, help="k-means random state.")
    @click.option("--text-column", default=None, help="Column/field with the text (default: text).")
    @click.option("--id-column", default=None, help="Column/field kept as the record id.")
    @click.option(
        "--input-format",
        type=click.Choice(["text", "jsonl", "csv", "parquet"]),
        default=None,
        help="Default: from the file extension.",
    )
    @click.option("--max-tokens", type=click.IntRange(min=1), default=None)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    def compare_cmd(
        specs: tuple[str, ...],
        input_path: str,
        k: str | None,
        as_json: bool,
        input_format: str | None,
        text_column: str | None,
        id_column: str | None,
        label_field: str | None,
        **kw: Any,
    ) -> None:
        """Embed INPUT with each SPEC (a model source, or a spec .json file) and compare:
        dimension, records/s, ARI and NMI of k-means against --label-field, k-NN label
        accuracy, and neighbour overlap between each pair. A model that fails to load
        is an error row (exit code 2); the others' results are still printed."""
        from tether.explore.compare_models import compare_models
        from tether.inference.records import Records

        records = Records(
            input_path,
            format=input_format,
            text_column=text_column,
            id_column=id_column,
            label_column=label_field,
        )
        result = compare_models(
            list(specs),
            records,
            k=parse_k(k) if k is not None else None,
            **kw,
        )
        click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.format(False))
        for row in result.failed:
            click.secho(f"error: {row.model}: {row.error_type}: {row.error}", fg="red", err=True)
            if row.hint:
                flags = flags_for(row.hint)
                where = (
                    f" (command line: write a spec with `tether spec {row.model} "
                    f"{' '.join(flags)} -o spec.json` and pass spec.json as SPEC)"
                    if flags
                    else ""
                )
                click.echo(f"  -> {row.hint}{where}", err=True)
        if result.failed:
            raise click.exceptions.Exit(2)
