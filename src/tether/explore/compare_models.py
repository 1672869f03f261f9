"""``compare_models()``: the same data through several embedding models, one table.

Per model: dimension, records/s (embedding, load excluded), k-means agreement with the
labels (ARI, NMI), leave-one-out k-NN label accuracy; per pair of models, how many of
each record's nearest neighbours they share. Every model loads through the same guarded
``load``: one that fails (custom code without trust, a missing tokenizer...) becomes a
loud error row, and the other models' figures stay.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

from tether.errors import TetherError
from tether.explore.clustering import cluster_vectors
from tether.explore.dataset import Dataset, embed_dataset
from tether.explore.models import loaded_model, model_name
from tether.explore.scores import (
    KNN_K,
    OVERLAP_K,
    knn_accuracy,
    label_agreement,
    neighbour_overlap,
    neighbours,
)
from tether.inference.records import Records, as_records


@dataclass
class ModelRow:
    """One model's figures, or the error that stopped it (``error`` set, figures None)."""

    model: str
    dimension: int | None = None
    records: int = 0
    embedded: int = 0
    errors: int = 0
    records_per_s: float | None = None
    ari: float | None = None
    nmi: float | None = None
    knn_accuracy: float | None = None
    error: str | None = None
    error_type: str | None = None
    hint: str | None = None


@dataclass
class ModelsComparison:
    rows: list[ModelRow]
    overlap: list[dict[str, Any]] = field(default_factory=list)  # {"a", "b", "overlap"}
    common: int = 0  # records every working model embedded (overlap is over these)
    k: int | str | None = None
    seed: int = 0
    label_field: str | None = None
    knn_k: int = KNN_K
    overlap_k: int = OVERLAP_K

    @property
    def failed(self) -> list[ModelRow]:
        return [r for r in self.rows if r.error is not None]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self, errors: bool = True) -> str:
        """The table, the overlaps, then (``errors``) one line per failed model."""
        header = ("model", "dim", "records/s", "ARI", "NMI", f"kNN@{self.knn_k}", "errors")
        table = [header]
        for r in self.rows:
            if r.error is not None:
                table.append((r.model, "-", "-", "-", "-", "-", "FAILED"))
                continue
            table.append(
                (
                    r.model,
                    str(r.dimension),
                    f"{r.records_per_s:.1f}" if r.records_per_s else "-",
                    _fmt(r.ari),
                    _fmt(r.nmi),
                    _fmt(r.knn_accuracy),
                    str(r.errors),
                )
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in table
        ]
        if self.overlap:
            lines.append(
                f"neighbour overlap ({self.overlap_k} nearest, over the {self.common} records "
                "every model embedded):"
            )
            lines += [f"  {o['a']} vs {o['b']}: {o['overlap']:.3f}" for o in self.overlap]
        if errors:
            for r in self.failed:
                lines.append(f"error: {r.model}: {r.error_type}: {r.error}")
                if r.hint:
                    lines.append(f"  -> {r.hint}")
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def compare_models(
    models: list[Any],
    input: Records | str,
    *,
    k: int | str | None = None,
    seed: int = 0,
    max_tokens: int | None = None,
    knn_k: int = KNN_K,
    overlap_k: int = OVERLAP_K,
) -> ModelsComparison:
    """Embed ``input`` with each of ``models`` and compare them on it.

    Args:
        models: sources, spec ``.json`` files, ModelSpecs or LoadedModels.
        input: the records: a ``Records`` (path, format, text/id/label columns) or a
            path. Without a ``label_column`` ARI, NMI and k-NN accuracy are left out.
        k: k-means clusters (default: the number of distinct labels, else ``"auto"``).
    Returns:
        ModelsComparison: one row per model, in the order given, failed ones included.
    """
    records = as_records(input, "input")
    records.require_file()  # a bad input is one error for all, before any model loads
    rows: list[ModelRow] = []
    datasets: dict[int, Dataset] = {}
    for index, model in enumerate(models):
        row = ModelRow(model_name(model))
        rows.append(row)
        try:
            data = embed_dataset(loaded_model(model), records, max_tokens=max_tokens)
        except TetherError as exc:
            row.error, row.error_type, row.hint = exc.message, type(exc).__name__, exc.hint
            continue
        except Exception as exc:  # one model's crash must not lose the others' results
            row.error, row.error_type = str(exc), type(exc).__name__
            continue
        datasets[index] = data
        row.records, row.embedded, row.errors = data.records, len(data), len(data.errors)
        row.dimension = int(data.vectors.shape[1]) if len(data) else None
        row.records_per_s = data.rate
        if data.labels is not None and len(data) >= 2:
            chosen = k if k is not None else len(set(data.labels))
            found = cluster_vectors(data.vectors, chosen, seed=seed)
            scores = label_agreement(data.labels, found.assignments)
            row.ari, row.nmi = scores["ari"], scores["nmi"]
            row.knn_accuracy = knn_accuracy(data.vectors, data.labels, knn_k)
    comparison = ModelsComparison(
        rows, k=k, seed=seed, label_field=records.label_column, knn_k=knn_k
    )
    comparison.overlap_k = overlap_k
    _overlaps(comparison, datasets, overlap_k)
    return comparison


def _overlaps(comparison: ModelsComparison, datasets: dict[int, Dataset], k: int) -> None:
    """Neighbour overlap per pair, over the records every working model embedded."""
    if len(datasets) < 2:
        return
    common = set.intersection(*(set(d.lines) for d in datasets.values()))
    comparison.common = len(common)
    if len(common) <= k:
        return
    near = {}
    for index, data in datasets.items():
        keep = [i for i, line in enumerate(data.lines) if line in common]
        near[index] = neighbours(data.vectors[keep], k)
    for a, b in itertools.combinations(sorted(near), 2):
        comparison.overlap.append(
            {
                "a": comparison.rows[a].model,
                "b": comparison.rows[b].model,
                "overlap": neighbour_overlap(near[a], near[b]),
            }
        )
