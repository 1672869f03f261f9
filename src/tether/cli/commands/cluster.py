"""`tether cluster`: embed a file, cluster it, score and summarise the clusters."""

from __future__ import annotations

import json
from typing import Any

import click

from tether.cli.options import OWN_CLASS, build_spec, spec_options


def parse_k(value: str) -> int | str:
    """``--k``: a whole number, or ``auto``."""
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a number nor 'auto'.") from None


def register(group: click.Group) -> None:
    """Add `tether cluster`."""

    @group.command("cluster")
    @click.argument("source", required=False)
    @click.option(
        "-i",
        "--input",
        "input_path",
        required=True,
        type=click.Path(dir_okay=False),
        help="File to cluster: text (one record per line), JSONL, CSV or Parquet.",
    )
    @click.option(
        "-o", "--output", default=None, help="Per-record Parquet (default: INPUT.clusters.parquet)."
    )
    @click.option(
        "--k",
        "k",
        default=None,
        metavar="N|auto",
        help="Clusters, or 'auto' (best silhouette over 2..12). "
        "Default: the number of labels with --label-field, else auto.",
    )
    @click.option(
        "--method",
        type=click.Choice(["auto", "kmeans", "minibatch", "hdbscan"]),
        default="auto",
        show_default=True,
        help="auto: k-means, mini-batch k-means above 50,000 records.",
    )
    @click.option("--seed", type=int, default=0, show_default=True, help="k-means random state.")
    @click.option("--label-field", default=None, help="Field with known groups to score against.")
    @click.option("--text-column", default=None, help="Column/field with the text (default: text).")
    @click.option("--id-column", default=None, help="Column/field kept as the record id.")
    @click.option(
        "--input-format",
        type=click.Choice(["text", "jsonl", "csv", "parquet"]),
        default=None,
        help="Default: from the file extension.",
    )
    @click.option(
        "--embeddings",
        default=None,
        type=click.Path(dir_okay=False),
        help="Reuse this `tether embed` output of INPUT instead of embedding again.",
    )
    @click.option("--errors", "errors_path", default=None, help="Default: OUTPUT.errors.jsonl.")
    @click.option(
        "--max-tokens",
        type=click.IntRange(min=1),
        default=None,
        help="Padded tokens per forward pass (default: by device).",
    )
    @click.option(
        "--map",
        "maps",
        is_flag=True,
        help="Also write OUTPUT.map.png and OUTPUT.map.html (hover shows each text).",
    )
    @click.option(
        "--projection",
        type=click.Choice(["pca", "umap"]),
        default="pca",
        show_default=True,
        help="Map projection (umap: pip install 'tether[umap]').",
    )
    @click.option("--overwrite", is_flag=True, help="Replace existing output.")
    @click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
    @spec_options(default_class=OWN_CLASS)
    def cluster_cmd(
        source: str | None,
        input_path: str,
        output: str | None,
        k: str | None,
        spec_values: dict[str, Any],
        embeddings: str | None,
        as_json: bool,
        errors_path: str | None,
        input_format: str | None,
        text_column: str | None,
        id_column: str | None,
        label_field: str | None,
        **kw: Any,
    ) -> None:
        """Embed INPUT with model SOURCE (default: the shipped minilm), cluster the
        vectors, and write one row per record (id, cluster, distance to the centroid),
        an errors file, and a summary with each cluster's size, representative texts
        and distinctive terms. Prints silhouette, and ARI / NMI / purity against
        --label-field."""
        from tether.explore.cluster import cluster
        from tether.inference.records import Records

        if spec_values.get("task"):
            raise click.UsageError("`tether cluster` embeds; --task does not apply.")
        model: Any = None
        if source or spec_values.get("spec_file"):
            model = build_spec(source, spec_values)
        elif embeddings is None:
            model = build_spec("minilm", spec_values)
        records = Records(
            input_path,
            format=input_format,
            text_column=text_column,
            id_column=id_column,
            label_column=label_field,
        )
        result = cluster(
            model,
            records,
            output,
            k=parse_k(k) if k is not None else None,
            embeddings=embeddings,
            errors=errors_path,
            **kw,
        )
        click.echo(
            f"wrote {result.output} ({result.written} rows), {result.summary_path}"
            + "".join(f", {m}" for m in result.maps)
            + f"; errors in {result.errors_path} ({result.errors})",
            err=True,
        )
        click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.format())
