"""``cluster()``: embed a dataset (or reuse an embed output), cluster it, score it,
summarise each cluster, and write it all down beside each other.

Files written for ``output=OUT.parquet``:

- ``OUT.parquet``: one row per embedded record: id, line, cluster, distance (label);
- ``OUT.parquet.errors.jsonl``: the records that did not embed, as ``tether run`` writes them;
- ``OUT.parquet.summary.json``: the figures and one entry per cluster.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tether.bundles import atomic
from tether.errors import OutputError, SpecError
from tether.explore.clustering import Clustering, cluster_vectors, silhouette
from tether.explore.dataset import Dataset, dataset_from_embeddings, embed_dataset
from tether.explore.models import loaded_model
from tether.explore.scores import label_agreement
from tether.explore.summary import ClusterSummary, summarise
from tether.inference.io import json_line
from tether.inference.lock import output_lock
from tether.inference.records import Records, as_records
from tether.inference.runner import refuse_clashes


@dataclass
class ClusterResult:
    """What a clustering run found and where it wrote it. Scores against labels are
    None when the records have no ``label_column``."""

    output: str
    errors_path: str
    summary_path: str
    model: str
    method: str
    k: int
    seed: int
    records: int
    written: int
    errors: int
    silhouette: float | None
    ari: float | None = None
    nmi: float | None = None
    purity: float | None = None
    clusters: list[ClusterSummary] = field(default_factory=list)
    silhouette_by_k: dict[int, float] = field(default_factory=dict)
    embed_seconds: float = 0.0
    cluster_seconds: float = 0.0
    maps: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.records == self.written + self.errors

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["silhouette_by_k"] = {str(k): v for k, v in self.silhouette_by_k.items()}
        return data

    def format(self) -> str:
        """The human summary: figures, then one block per cluster."""
        lines = [
            f"{self.model}: {self.method}, {self.k} clusters (seed {self.seed}); "
            f"records in: {self.records} = clustered {self.written} + errors {self.errors}",
            "silhouette "
            + _fmt(self.silhouette)
            + (
                f"   ARI {_fmt(self.ari)}   NMI {_fmt(self.nmi)}   purity {_fmt(self.purity)}"
                if self.ari is not None
                else ""
            ),
        ]
        if self.silhouette_by_k:
            tried = ", ".join(f"{k}: {v:.3f}" for k, v in self.silhouette_by_k.items())
            lines.append(f"k chosen by silhouette from {tried}")
        for c in self.clusters:
            label = f"  (mostly {c.top_label!r})" if c.top_label is not None else ""
            name = "noise" if c.cluster < 0 else f"cluster {c.cluster}"
            lines.append(f"{name}: {c.size} records{label}; terms: {', '.join(c.terms) or '-'}")
            lines.extend(f"    | {text}" for text in c.representatives)
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def cluster(
    model: Any = None,
    input: Records | str = "",
    output: str | None = None,
    *,
    k: int | str | None = None,
    method: str = "auto",
    seed: int = 0,
    embeddings: str | None = None,
    errors: str | None = None,
    overwrite: bool = False,
    max_tokens: int | None = None,
    maps: bool = False,
    projection: str = "pca",
) -> ClusterResult:
    """Embed ``input`` with ``model`` and cluster the vectors.

    Args:
        model: a source (``"minilm"``, a directory, a hub id), a ModelSpec or a
            LoadedModel; not needed when ``embeddings`` is given.
        input: the records: a ``Records`` (path, format, text/id/label columns) or a
            path, read as ``tether run`` reads them.
        output: the per-record Parquet (default: INPUT's name + ``.clusters.parquet``).
        k: clusters, or ``"auto"`` (best silhouette over 2..12). Default: the number of
            distinct labels when the records have a ``label_column``, else ``"auto"``.
        method: ``auto``, ``kmeans``, ``minibatch`` or ``hdbscan``.
        seed: k-means' random state: the same seed gives the same cluster ids.
        embeddings: a ``tether embed`` output of ``input`` to reuse instead of embedding.
        maps: also write ``OUT.map.png`` and ``OUT.map.html``, 2-D maps coloured by
            cluster (and label), the HTML one showing each point's text on hover.
        projection: the maps' projection, ``pca`` or ``umap`` (the ``umap`` extra).
    Returns:
        ClusterResult with the figures, the per-cluster summaries and the paths.
    Raises:
        OutputError: the output exists (pass overwrite=True) or clashes with the input.
        InputError: unreadable input, or embeddings made from another file.
    """
    if not input:
        raise SpecError("cluster() needs input=, the file to cluster.", "Pass input='data.jsonl'.")
    if model is None and embeddings is None:
        raise SpecError(
            "cluster() needs a model to embed with, or embeddings= from `tether embed`.",
            "Pass model='minilm' (or a directory), or embeddings='out.parquet'.",
        )
    if maps:
        from tether.explore.maps import PROJECTIONS

        if projection not in PROJECTIONS:
            raise SpecError(
                f"Unknown projection {projection!r}.", f"Pass projection= one of {PROJECTIONS}."
            )
    records = as_records(input, "input")
    records.require_file()
    output = output or str(Path(records.path).with_suffix("")) + ".clusters.parquet"
    errors = errors or f"{output}.errors.jsonl"
    summary_path = f"{output}.summary.json"
    refuse_clashes(records.path, output, errors, "parquet")
    if embeddings:
        refuse_clashes(embeddings, output, errors, "parquet")
    if Path(output).exists() and not overwrite:
        raise OutputError(
            f"Output {output} already exists.", "Pass overwrite=True to replace it.", path=output
        )
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with output_lock(output):
        if embeddings:
            data = dataset_from_embeddings(embeddings, records)
        else:
            data = embed_dataset(loaded_model(model), records, max_tokens=max_tokens)
        if k is None:
            k = len(set(data.labels)) if data.labels is not None else "auto"
        started = time.perf_counter()
        found = cluster_vectors(data.vectors, k, method=method, seed=seed)
        result = _result(data, found, output, errors, summary_path)
        result.cluster_seconds = time.perf_counter() - started
        result.embed_seconds = data.seconds
        _write(data, found, result)
        if maps:
            from tether.explore.maps import write_maps

            result.maps = write_maps(
                data.vectors,
                found.assignments,
                data.texts,
                data.labels,
                output,
                seed=seed,
                projection=projection,
            )
            atomic.write_text(
                Path(summary_path),
                json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n",
            )
    if not result.balanced:
        raise OutputError(
            f"Record accounting failed: {result.records} in, {result.written} clustered, "
            f"{result.errors} errors.",
            "Please report this as a bug.",
            path=output,
        )
    return result


def _result(
    data: Dataset, found: Clustering, output: str, errors: str, summary_path: str
) -> ClusterResult:
    result = ClusterResult(
        output=output,
        errors_path=errors,
        summary_path=summary_path,
        model=data.model,
        method=found.method,
        k=found.k,
        seed=found.seed,
        records=data.records,
        written=len(data),
        errors=len(data.errors),
        silhouette=silhouette(data.vectors, found.assignments, found.seed),
        silhouette_by_k=found.silhouette_by_k,
    )
    if data.labels is not None:
        scores = label_agreement(data.labels, found.assignments)
        result.ari, result.nmi, result.purity = scores["ari"], scores["nmi"], scores["purity"]
    result.clusters = summarise(data.texts, found.assignments, found.distances, data.labels)
    return result


def _write(data: Dataset, found: Clustering, result: ClusterResult) -> None:
    """Rows, errors and summary, each written to a temporary file and renamed."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    distances = np.asarray(found.distances, dtype=np.float64)
    columns: dict[str, Any] = {
        "id": pa.array(data.ids),
        "line": pa.array(data.lines, pa.int64()),
        "cluster": pa.array(found.assignments, pa.int64()),
        "distance": pa.array(distances, pa.float64(), mask=np.isnan(distances)),
    }
    if data.labels is not None:
        columns["label"] = pa.array(data.labels, pa.string())
    output = Path(result.output)
    tmp = output.with_name(output.name + ".tmp")
    pq.write_table(pa.table(columns), tmp)
    atomic.write_text(
        Path(result.errors_path),
        "".join(json_line(row) for row in data.errors),
    )
    atomic.write_text(
        Path(result.summary_path), json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
    )
    atomic.publish_file(tmp, output)
