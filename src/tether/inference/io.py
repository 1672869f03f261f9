"""Readers and writers for the local runner: stream records in, rows out.

Readers yield one ``Record`` per input record, malformed ones included (with the
problem set), so that nothing is dropped before it is counted. Writers take rows
(plain dicts) and write Parquet, JSONL or .npy.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.errors import InputError

INPUT_FORMATS = ("text", "jsonl", "csv", "parquet")
OUTPUT_FORMATS = ("parquet", "jsonl", "npy")
_SUFFIXES = {
    ".txt": "text",
    ".text": "text",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npy": "npy",
}


@dataclass(frozen=True)
class Record:
    """One input record: its 1-based line (or row) number, id and value, or a problem."""

    line: int
    id: Any
    value: Any = None
    problem: str | None = None


def guess_format(path: str | Path, allowed: tuple[str, ...], option: str = "the format") -> str:
    """The format named by a path's extension (``.gz`` and glob stars ignored)."""
    name = str(path).lower().removesuffix(".gz")
    suffix = Path(name.replace("*", "x")).suffix
    fmt = _SUFFIXES.get(suffix)
    if fmt not in allowed:
        raise InputError(
            f"Cannot tell the format of {str(path)!r} from its extension {suffix or '(none)'!r}.",
            f"Pass {option} explicitly: one of {', '.join(allowed)}.",
        )
    return fmt


def count_records(path: str | Path, fmt: str) -> int | None:
    """Cheap record count for a progress bar (None when it would cost a full parse)."""
    path = Path(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    if fmt in ("text", "jsonl"):
        count = 0
        last = b"\n"
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                count += block.count(b"\n")
                last = block[-1:]
        return count + (last != b"\n")
    return None


def read_records(
    path: str | Path,
    fmt: str | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
) -> Iterator[Record]:
    """Stream records from a text, JSONL, CSV or Parquet file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Input file {str(path)!r} does not exist.", "Check the path.")
    fmt = fmt or guess_format(path, INPUT_FORMATS)
    if fmt not in INPUT_FORMATS:
        raise InputError(f"Unknown input format {fmt!r}.", f"Use one of {INPUT_FORMATS}.")
    if fmt == "text":
        if text_column or id_column:
            raise InputError(
                "Plain text input has no columns.",
                "Drop text_column/id_column, or use a JSONL/CSV/Parquet file.",
            )
        return _read_text(path)
    column = text_column or "text"
    if fmt == "jsonl":
        return _read_jsonl(path, column, id_column)
    if fmt == "csv":
        return _read_csv(path, column, id_column)
    return _read_parquet(path, column, id_column)


def _read_text(path: Path) -> Iterator[Record]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                yield Record(number, number, problem=f"not valid UTF-8: {exc}")
                continue
            yield Record(number, number, text)


def _pick(row: dict[str, Any], number: int, column: str, id_column: str | None) -> Record:
    record_id = row.get(id_column, number) if id_column else number
    if column not in row:
        return Record(number, record_id, problem=f"no {column!r} field (has: {sorted(row)})")
    return Record(number, record_id, row[column])


def _read_jsonl(path: Path, column: str, id_column: str | None) -> Iterator[Record]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                yield Record(number, number, problem="blank line")
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield Record(number, number, problem=f"malformed JSON: {exc}")
                continue
            if not isinstance(row, dict):
                yield Record(number, number, problem=f"expected a JSON object, got {row!r:.60}")
                continue
            yield _pick(row, number, column, id_column)


def _read_csv(path: Path, column: str, id_column: str | None) -> Iterator[Record]:
    with path.open(newline="", encoding="utf-8", errors="strict") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            return
        if column not in reader.fieldnames:
            raise InputError(
                f"{str(path)!r} has no column {column!r} (columns: {reader.fieldnames}).",
                "Pass text_column= with one of those columns.",
            )
        for row in reader:
            number = reader.line_num  # physical line where the row ends (header is line 1)
            if None in row:  # more fields than the header
                yield Record(number, number, problem=f"{len(row[None])} extra field(s) on row")
                continue
            yield _pick(row, number, column, id_column)


def _read_parquet(path: Path, column: str, id_column: str | None) -> Iterator[Record]:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    names = file.schema_arrow.names
    for needed in filter(None, (column, id_column)):
        if needed not in names:
            raise InputError(
                f"{str(path)!r} has no column {needed!r} (columns: {names}).",
                "Pass text_column=/id_column= with one of those columns.",
            )
    columns = [c for c in (column, id_column) if c]
    number = 0
    for batch in file.iter_batches(batch_size=4096, columns=columns):
        values = batch.column(column).to_pylist()
        ids = batch.column(id_column).to_pylist() if id_column else None
        for i, value in enumerate(values):
            number += 1
            yield Record(number, ids[i] if ids else number, value)


# -- writers -----------------------------------------------------------------------------


class RowWriter:
    """Writes rows (dicts) to one file; ``close()`` finishes it. Not atomic by itself."""

    def __init__(self, path: str | Path, fmt: str) -> None:
        self.path = Path(path)
        self.fmt = fmt
        self._parquet: Any = None
        self._handle: Any = None
        self._npy_rows = 0
        self._npy_dim: int | None = None
        if fmt == "jsonl":
            self._handle = self.path.open("w", encoding="utf-8")
        elif fmt == "npy":
            self._handle = self.path.open("wb")
        elif fmt != "parquet":
            raise InputError(f"Unknown output format {fmt!r}.", f"Use one of {OUTPUT_FORMATS}.")

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.fmt == "jsonl":
            for row in rows:
                self._handle.write(json.dumps(row, ensure_ascii=False, default=_json_default))
                self._handle.write("\n")
        elif self.fmt == "npy":
            self._write_npy(rows)
        else:
            self._write_parquet(rows)

    def write_table(self, table: Any) -> None:
        """Append an Arrow table (Parquet only): used to merge part files without decoding."""
        import pyarrow.parquet as pq

        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.path, table.schema)
        self._parquet.write_table(table)

    def _write_parquet(self, rows: list[dict[str, Any]]) -> None:
        table = _rows_to_table(rows)
        if self._parquet is not None and table.schema != self._parquet.schema:
            table = table.cast(self._parquet.schema)
        self.write_table(table)

    def _write_npy(self, rows: list[dict[str, Any]]) -> None:
        import numpy as np

        block = np.stack([np.asarray(r["embedding"], dtype=np.float32) for r in rows])
        if self._npy_dim is None:
            self._npy_dim = block.shape[1]
        self._handle.write(block.tobytes())
        self._npy_rows += len(rows)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        elif self.fmt == "parquet":  # no rows at all: still write a valid, empty file
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"id": pa.array([], pa.int64())}), self.path)
        if self._handle is not None:
            self._handle.close()
        if self.fmt == "npy":
            _add_npy_header(self.path, self._npy_rows, self._npy_dim or 0)


def _add_npy_header(path: Path, rows: int, dim: int) -> None:
    """Prefix raw float32 rows with an .npy header, streaming (memory stays flat)."""
    import numpy as np

    raw = path.with_name(path.name + ".raw")
    os.replace(path, raw)
    with path.open("wb") as out, raw.open("rb") as src:
        np.lib.format.write_array_header_1_0(
            out, {"descr": "<f4", "fortran_order": False, "shape": (rows, dim)}
        )
        while block := src.read(1 << 22):
            out.write(block)
    raw.unlink()


def _rows_to_table(rows: list[dict[str, Any]]) -> Any:
    """Rows to an Arrow table; equal-length float vectors become fixed-size float32 lists."""
    import numpy as np
    import pyarrow as pa

    columns: dict[str, Any] = {}
    for key in rows[0]:
        values = [row.get(key) for row in rows]
        first = values[0]
        if (
            isinstance(first, np.ndarray)
            and first.ndim == 1
            and all(isinstance(v, np.ndarray) and v.shape == first.shape for v in values)
        ):
            stacked = np.stack([np.asarray(v) for v in values])
            flat = pa.array(stacked.astype(np.float32, copy=False).reshape(-1))
            columns[key] = pa.FixedSizeListArray.from_arrays(flat, first.shape[0])
        else:
            columns[key] = pa.array(
                [v.tolist() if isinstance(v, np.ndarray) else v for v in values]
            )
    return pa.table(columns)


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "tolist"):  # torch tensors
        return value.tolist()
    return repr(value)
