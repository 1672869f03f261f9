"""Helpers for tests of optimised bundles: edit a copy's evidence, and run a bundle's
embeddings through `tether embed` and through a Beam handler."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from click.testing import CliRunner

from conftest import optional_import


def exported_tiny_bert(model_dir: Path, work: Path, texts: Sequence[str]) -> tuple[Any, list]:
    """(the loaded tiny BERT, its embed task's batches of 4 of ``texts``), with the task's
    forward pass exported to ``work / "export.onnx"``."""
    from tether import ModelSpec, load
    from tether.inference.engine import Engine
    from tether.inference.graphs.export import export_graph

    loaded = load(ModelSpec(str(model_dir), model_class="AutoModel"))
    task = Engine(loaded, "embed").task
    encoded = task.encode(list(texts))
    batches = [dict(task.collate(encoded[i : i + 4])) for i in range(0, len(encoded), 4)]
    export_graph(task.graph_module, batches[0], task.graph_output, work / "export.onnx")
    return loaded, batches


def copy_of(bundle: Path, tmp_path: Path) -> Path:
    target = tmp_path / bundle.name
    shutil.copytree(bundle, target)
    return target


def edit_evidence(bundle: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    """Apply ``change`` to the manifest's ``optimized`` section in place."""
    manifest_path = bundle / "tether.json"
    data = json.loads(manifest_path.read_text())
    change(data["optimized"])
    manifest_path.write_text(json.dumps(data))


def embed_with_cli(bundle: Path, texts: Sequence[str], tmp_path: Path) -> np.ndarray:
    """``tether embed BUNDLE`` over ``texts`` in a JSONL file; the vectors in input order."""
    from tether.cli.main import cli

    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    out = tmp_path / "out.parquet"
    result = CliRunner().invoke(cli, ["embed", str(bundle), "-i", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return np.stack(pq.read_table(out).column("embedding").to_numpy(zero_copy_only=False))


def embed_with_beam(
    bundle: Path, texts: Sequence[str], check: Callable[[np.ndarray], None]
) -> None:
    """Run ``texts`` through a keyed ``TextEmbeddingHandler`` of the bundle on Beam's
    DirectRunner; ``check`` gets all the vectors in input order (inside the pipeline)."""
    beam: Any = optional_import("apache_beam", "beam")
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
    from apache_beam.testing.util import assert_that

    from tether.beam import TextEmbeddingHandler
    from tether.models.manifest import bundle_spec

    handler = KeyedModelHandler(TextEmbeddingHandler(bundle_spec(bundle)))

    def in_order(results: list) -> None:
        got = np.stack([np.asarray(r.inference) for _, r in sorted(results, key=lambda kv: kv[0])])
        assert len(got) == len(texts)
        check(got)

    with beam.Pipeline() as pipeline:
        keyed = pipeline | beam.Create(list(enumerate(texts)))
        assert_that(keyed | RunInference(handler), in_order)
