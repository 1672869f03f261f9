"""Records in, vectors out: a dataset embedded once and kept aligned row by row.

Reading goes through a ``Records`` (the runner's reading core), so a file gives the
same records, ids and problems here as in ``tether run``; bad records become error rows
of the same shape. Everything else in ``explore`` works on a ``Dataset``.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.errors import InputError
from tether.inference.engine import Engine
from tether.inference.io import Record, guess_format
from tether.inference.records import Records
from tether.inference.results import Prediction, RecordError
from tether.inference.runner import error_row, ids_path
from tether.models.loading import LoadedModel

#: Records embedded per engine chunk: bounds the token buffers, not the result matrix.
CHUNK_SIZE = 2048


@dataclass
class Dataset:
    """The records that embedded, in input order, with their vectors; and the ones that
    did not, as error rows. ``records == len(ids) + len(errors)`` always."""

    ids: list[Any]
    lines: list[int]
    texts: list[str]
    labels: list[str] | None
    vectors: Any  # (n, d) float32 numpy array
    errors: list[dict[str, Any]] = field(default_factory=list)
    records: int = 0
    seconds: float = 0.0  # reading and embedding, wall clock
    model: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def balanced(self) -> bool:
        return self.records == len(self.ids) + len(self.errors)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class _Rows:
    """What both loaders collect: the kept records' columns, their vectors, the error
    rows, and the count of records read; ``dataset()`` makes the ``Dataset``. Vectors are
    stacked into float32 blocks at each ``flush()``, so per-record arrays live no longer
    than a chunk."""

    def __init__(self, records: Records) -> None:
        self.input = records
        self.started = time.perf_counter()
        self.ids: list[Any] = []
        self.lines: list[int] = []
        self.texts: list[str] = []
        self.labels: list[str] = []
        self.vectors: list[Any] = []  # since the last flush
        self.blocks: list[Any] = []
        self.errors: list[dict[str, Any]] = []
        self.records = 0

    def refused(self, record: Record, label_problem: str | None) -> bool:
        """Add the error row of an unreadable or unlabelled record; True if there was one."""
        if record.problem is not None:
            self.errors.append(error_row(record, "unreadable", record.problem))
        elif label_problem is not None:
            self.errors.append(error_row(record, "no-label", label_problem))
        else:
            return False
        return True

    def keep(self, record: Record, label: str | None, vector: Any) -> None:
        self.ids.append(record.id)
        self.lines.append(record.line)
        self.texts.append(str(record.value))
        self.labels.append(label or "")
        self.vectors.append(vector)

    def flush(self) -> None:
        import numpy as np

        if self.vectors:
            self.blocks.append(np.stack(self.vectors).astype(np.float32, copy=False))
            self.vectors = []

    def dataset(self, model: str) -> Dataset:
        import numpy as np

        self.flush()
        matrix = np.concatenate(self.blocks) if self.blocks else np.zeros((0, 0), np.float32)
        return Dataset(
            self.ids,
            self.lines,
            self.texts,
            self.labels if self.input.label_column else None,
            matrix,
            self.errors,
            records=self.records,
            seconds=time.perf_counter() - self.started,
            model=model,
        )


def embed_dataset(
    loaded: LoadedModel,
    records: Records,
    *,
    max_tokens: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Dataset:
    """Embed every record of ``records`` with ``loaded``'s own pooling.

    Memory: the vectors (records x dimension float32) and the texts; token buffers
    stay bounded by ``chunk_size``.
    """
    engine = Engine(loaded, "embed", max_tokens=max_tokens)
    rows = _Rows(records)
    pending: collections.deque[list[tuple[Record, str | None, str | None]]] = collections.deque()

    def values() -> Iterator[list[Any]]:
        chunk: list[tuple[Record, str | None, str | None]] = []
        for item in records.read_labelled():
            rows.records += 1
            chunk.append(item)
            if len(chunk) == chunk_size:
                pending.append(chunk)
                yield [r.value for r, _, p in chunk if r.problem is None and p is None]
                chunk = []
        if chunk:
            pending.append(chunk)
            yield [r.value for r, _, p in chunk if r.problem is None and p is None]

    for outcomes in engine.stream_chunks(values()):
        results = iter(outcomes)
        for record, label, label_problem in pending.popleft():
            if rows.refused(record, label_problem):
                continue
            outcome = next(results)
            if isinstance(outcome, RecordError):
                rows.errors.append(error_row(record, outcome.kind, outcome.reason))
                continue
            assert isinstance(outcome, Prediction)
            rows.keep(record, label, outcome.inference)
        rows.flush()
    return rows.dataset(loaded.model_id or str(loaded.path))


def dataset_from_embeddings(embeddings: str, records: Records) -> Dataset:
    """A ``Dataset`` from an earlier ``tether embed`` output (Parquet, JSONL, or .npy with
    its ids file) and the input it was made from, without running a model.

    Records of the input that have no vector (the embed run's own error rows) become
    error rows here too; vectors whose line or id disagrees with the input mean the
    embeddings came from another file, which is refused.
    """
    rows = _Rows(records)  # its clock includes reading the embeddings
    by_line = _read_embeddings(embeddings)
    seen: set[int] = set()
    for record, label, label_problem in records.read_labelled():
        rows.records += 1
        found = by_line.get(record.line)
        if found is not None:
            seen.add(record.line)
            if found[0] != record.id and str(found[0]) != str(record.id):
                raise InputError(
                    f"{embeddings!r} gives line {record.line} the id {found[0]!r}, but the "
                    f"input has {record.id!r} there: the embeddings come from another file.",
                    "Pass the input= the embeddings were made from (and the same id_column=).",
                    path=embeddings,
                )
        if rows.refused(record, label_problem):
            continue
        if found is None:
            rows.errors.append(
                error_row(
                    record, "no-embedding", f"no vector for line {record.line} in {embeddings}"
                )
            )
        else:
            rows.keep(record, label, found[1])
    extra = sorted(set(by_line) - seen)
    if extra:
        raise InputError(
            f"{embeddings!r} holds vectors for {len(extra)} line(s) the input does not have "
            f"(first: {extra[0]}): the embeddings come from another file.",
            "Pass the input= the embeddings were made from.",
            path=embeddings,
        )
    return rows.dataset(f"embeddings from {embeddings}")


def _read_embeddings(path: str) -> dict[int, tuple[Any, Any]]:
    """line -> (id, vector) of a ``tether embed`` output."""
    import json

    import numpy as np

    if not Path(path).is_file():
        raise InputError(
            f"Embeddings file {path!r} does not exist.", "Check embeddings=.", path=path
        )
    fmt = guess_format(path, ("parquet", "jsonl", "npy"), "a .parquet, .jsonl or .npy file")
    if fmt == "npy":
        matrix = np.load(path, mmap_mode="r")
        ids_file = Path(ids_path(path))
        if not ids_file.is_file():
            raise InputError(
                f"{path!r} has no ids file {ids_file.name!r} beside it.",
                "Pass the .npy written by `tether embed` together with its .ids.jsonl.",
                path=path,
            )
        rows = [json.loads(line) for line in ids_file.read_text(encoding="utf-8").splitlines()]
        return {int(r["line"]): (r["id"], np.asarray(matrix[i])) for i, r in enumerate(rows)}
    if fmt == "jsonl":
        table = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
        names = set(table[0]) if table else {"id", "line", "embedding"}
        _check_columns(path, names)
        return {int(r["line"]): (r["id"], np.asarray(r["embedding"])) for r in table}
    import pyarrow.parquet as pq

    parquet = pq.read_table(path)
    _check_columns(path, set(parquet.column_names))
    vectors = parquet.column("embedding").to_numpy(zero_copy_only=False)
    lines = parquet.column("line").to_pylist()
    ids = parquet.column("id").to_pylist()
    return {
        int(line): (record_id, np.asarray(vector))
        for line, record_id, vector in zip(lines, ids, vectors, strict=True)
    }


def _check_columns(path: str, names: set[str]) -> None:
    missing = {"id", "line", "embedding"} - names
    if missing:
        raise InputError(
            f"{path!r} is not a `tether embed` output: it has no {sorted(missing)} column(s).",
            "Pass embeddings= a file written by `tether embed` (or run without it).",
            path=path,
        )
