"""`tether demo`: a web page for one model or bundle, on 127.0.0.1, or a Space folder."""

from __future__ import annotations

import tempfile
from typing import Any

import click

from tether.cli.options import OWN_CLASS, build_spec, spec_options


def register(group: click.Group) -> None:
    """Add `tether demo`."""

    @group.command("demo")
    @click.argument("source", required=False)
    @click.option(
        "-i",
        "--input",
        "input_path",
        default=None,
        type=click.Path(dir_okay=False, exists=True),
        help="Corpus for an embedding model: nearest-neighbour search and a cluster map.",
    )
    @click.option("--text-column", default=None, help="Column/field with the text (default: text).")
    @click.option(
        "--demo-task",
        type=click.Choice(["embed", "classify", "fill-mask"]),
        default=None,
        help="What to show (default: by the checkpoint's head: classify, fill-mask, else embed).",
    )
    @click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
    @click.option("--port", type=click.IntRange(min=0, max=65535), default=None)
    @click.option(
        "--export-space",
        "space_dir",
        default=None,
        type=click.Path(file_okay=False),
        help="Write a Hugging Face Space folder (app.py, requirements, README, bundle) and exit.",
    )
    @click.option("--overwrite", is_flag=True, help="Replace an existing --export-space folder.")
    @spec_options(default_class=OWN_CLASS)
    def demo_cmd(
        source: str | None,
        spec_values: dict[str, Any],
        input_path: str | None,
        text_column: str | None,
        demo_task: str | None,
        top_k: int,
        port: int | None,
        space_dir: str | None,
        overwrite: bool,
    ) -> None:
        """Serve a demo page for model SOURCE (a directory, bundle, hub id, or the shipped
        minilm): type a text, see the task's output. With -i DATA an embedding model
        also searches DATA and shows its cluster map. Listens on 127.0.0.1 only."""
        from tether.demo.service import DemoService, task_for
        from tether.models.loading import load
        from tether.models.manifest import bundle_spec, is_bundle

        if spec_values.get("task"):
            raise click.UsageError("`tether demo` takes --demo-task, not --task.")
        source = source or "minilm"
        spec = bundle_spec(source) if is_bundle(source) else build_spec(source, spec_values)
        loaded = load(spec)
        task = demo_task or task_for(loaded)
        if space_dir:
            from tether.demo.space import export_space

            out = export_space(
                loaded,
                space_dir,
                task=task,
                corpus=input_path,
                text_column=text_column,
                overwrite=overwrite,
            )
            click.echo(f"wrote a Space to {out}: app.py, requirements.txt, README.md, model/")
            return
        corpus = map_image = None
        if input_path:
            corpus, map_image = _corpus(loaded, input_path, text_column)
        from tether.demo.app import build_app, launch

        service = DemoService(loaded, task, corpus, top_k=top_k)
        app = build_app(service, map_image=map_image)
        url = launch(app, port=port)
        click.echo(f"tether demo of {service.model_id} ({task}) running at {url}")
        click.echo("press Ctrl+C to stop", err=True)
        app.block_thread()  # gradio closes the server on Ctrl+C


def _corpus(loaded: Any, input_path: str, text_column: str | None) -> tuple[Any, str]:
    """Embed the corpus and draw its map (explore), for the demo to search and show."""
    from tether.demo.service import Corpus
    from tether.explore.clustering import cluster_vectors
    from tether.explore.dataset import embed_dataset
    from tether.explore.maps import write_maps
    from tether.inference.records import Records

    data = embed_dataset(loaded, Records(input_path, text_column=text_column))
    if data.errors:
        click.echo(f"note: {len(data.errors)} corpus record(s) could not be embedded", err=True)
    found = cluster_vectors(data.vectors, "auto")
    where = tempfile.mkdtemp(prefix="tether-demo-")
    png = write_maps(data.vectors, found.assignments, data.texts, None, f"{where}/corpus")[0]
    return Corpus(data.texts, data.vectors), png
