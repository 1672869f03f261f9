"""Readers and writers for the local runner: stream records in, rows out.

Readers yield one ``Record`` per input record, malformed ones included (with the
problem set), so that nothing is dropped before it is counted. Writers take rows
(plain dicts) and write Parquet, JSONL or .npy.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

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
        raise InputError(
            f"Input file {str(path)!r} does not exist.", "Check the path.", path=str(path)
        )
    fmt = fmt or guess_format(path, INPUT_FORMATS)
    check_columns(fmt, text_column, id_column)
    if fmt == "parquet":
        return _read_parquet(path, text_column or "text", id_column)
    return _read_path(path, fmt, text_column, id_column)


def check_columns(fmt: str, text_column: str | None, id_column: str | None) -> None:
    """Refuse an unknown format, or columns for plain text (which has none)."""
    if fmt not in INPUT_FORMATS:
        raise InputError(f"Unknown input format {fmt!r}.", f"Use one of {INPUT_FORMATS}.")
    if fmt == "text" and (text_column or id_column):
        raise InputError(
            "Plain text input has no columns.",
            "Drop text_column/id_column, or use a JSONL/CSV/Parquet file.",
        )


def _read_path(
    path: Path, fmt: str, text_column: str | None, id_column: str | None
) -> Iterator[Record]:
    with path.open("rb") as handle:
        yield from read_stream(handle, fmt, text_column, id_column, name=str(path))


def read_stream(
    handle: BinaryIO,
    fmt: str,
    text_column: str | None = None,
    id_column: str | None = None,
    name: str = "input",
) -> Iterator[Record]:
    """Records of one text, JSONL or CSV byte stream: the one reading core that the local
    runner and Beam's ``ReadRecords`` share, so both read a file into the same records
    and the same problems."""
    check_columns(fmt, text_column, id_column)
    column = text_column or "text"
    if fmt == "text":
        for number, raw in enumerate(handle, start=1):
            yield text_record(raw, number)
    elif fmt == "jsonl":
        for number, raw in enumerate(handle, start=1):
            yield jsonl_record(raw, number, column, id_column)
    elif fmt == "csv":
        yield from _csv_records(handle, column, id_column, name)
    else:
        raise InputError(f"{fmt} input is not read as a byte stream.", "Use read_records().")


def _decode(raw: bytes) -> tuple[str | None, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8: {exc}"


def text_record(raw: bytes, number: int) -> Record:
    """One line of a plain text file (its line number is its id)."""
    text, problem = _decode(raw)
    if text is None:
        return Record(number, number, problem=problem)
    return Record(number, number, text.rstrip("\r\n"))


def jsonl_record(raw: bytes, number: int, column: str, id_column: str | None) -> Record:
    """One line of a JSONL file."""
    unknown_id = None if id_column else number
    if not raw.strip():
        return Record(number, unknown_id, problem="blank line")
    try:
        row = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return Record(number, unknown_id, problem=f"malformed JSON: {exc}")
    if not isinstance(row, dict):
        return Record(number, unknown_id, problem=f"expected a JSON object, got {row!r:.60}")
    return row_record(row, number, column, id_column)


def row_record(
    row: dict[str, Any], number: int, column: str, id_column: str | None, typed: bool = False
) -> Record:
    """One record from a row's fields: its id normalised, a text with lone surrogates
    (unwritable as UTF-8) refused. ``typed`` (Parquet) keeps int64 ids as ints."""
    record_id: Any = number
    id_problem = None
    if id_column:
        if id_column in row:
            record_id, id_problem = normalise_id(row[id_column], typed)
        else:
            record_id, id_problem = None, f"no id field {id_column!r} (has: {sorted(row)})"
    if column not in row:
        return Record(number, record_id, problem=f"no {column!r} field (has: {sorted(row)})")
    if id_problem:
        return Record(number, None, problem=id_problem)
    value = row[column]
    if isinstance(value, str) and _SURROGATE.search(value):
        return Record(
            number, record_id, problem="text holds a lone surrogate (not encodable as UTF-8)"
        )
    return Record(number, record_id, value)


_SURROGATE = re.compile("[\ud800-\udfff]")
INT64 = (-(2**63), 2**63 - 1)


def normalise_id(value: Any, typed: bool = False) -> tuple[Any, str | None]:
    """An id column's value as written: a string, or (``typed``, from Parquet) an int64.

    JSONL and CSV ids are always strings, so a file whose ids mix numbers and strings
    (or change type between chunks) still writes one id column; ints too large for
    int64 become strings. A missing, null or nested id is a problem, never replaced.
    """
    if value is None:
        return None, "id is null"
    if isinstance(value, bool | dict | list):
        return None, f"id must be a string or a number, got {value!r:.60}"
    if isinstance(value, int):
        if typed and INT64[0] <= value <= INT64[1]:
            return value, None
        return str(value), None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None, f"id is not a finite number: {value!r}"
        return (str(int(value)) if value.is_integer() else repr(value)), None
    if isinstance(value, str):
        if _SURROGATE.search(value):
            return None, "id holds a lone surrogate or invalid UTF-8"
        if value == "":
            return None, "id is empty"
        return value, None
    if isinstance(value, bytes):
        text, problem = _decode(value)
        return (text, None) if text is not None else (None, f"id {problem}")
    return str(value), None  # Decimal, date...: their text form


def _csv_records(
    handle: BinaryIO, column: str, id_column: str | None, name: str
) -> Iterator[Record]:
    # surrogateescape: an invalid byte becomes one error row, not a crash of the reader
    text = io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise InputError(
            f"{name!r}: unreadable CSV header: {exc}", "Fix the file's first line.", path=name
        ) from exc
    for needed, argument in ((column, "text_column"), (id_column, "id_column")):
        if needed and needed not in header:
            raise InputError(
                f"{name!r} has no column {needed!r} (columns: {header}).",
                f"Pass {argument}= with one of those columns.",
                path=name,
            )
    if any(_SURROGATE.search(h) for h in header):
        raise InputError(
            f"{name!r}: the CSV header is not valid UTF-8.", "Fix the file's first line.", path=name
        )
    previous = reader.line_num
    while True:
        start = previous + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num
            if "unexpected end of data" in str(exc):  # an unterminated quote swallowed the rest
                for number in range(start, max(end, start) + 1):
                    yield Record(
                        number,
                        None if id_column else number,
                        problem=f"unterminated quote opened on line {start}: lines {start}-{end} "
                        "cannot be split into records",
                    )
                return
            for number in range(start, max(end, start) + 1):
                yield Record(number, None if id_column else number, problem=f"malformed CSV: {exc}")
            previous = end
            continue
        number = reader.line_num  # physical line where the row ends (header is line 1)
        previous = number
        unknown_id = None if id_column else number
        if not fields:
            yield Record(number, unknown_id, problem="blank line")
        elif any(_SURROGATE.search(f) for f in fields):
            yield Record(number, unknown_id, problem="not valid UTF-8")
        elif len(fields) > len(header):
            yield Record(
                number, unknown_id, problem=f"{len(fields) - len(header)} extra field(s) on row"
            )
        elif len(fields) < len(header):
            yield Record(
                number, unknown_id, problem=f"{len(header) - len(fields)} field(s) missing on row"
            )
        else:
            yield row_record(dict(zip(header, fields, strict=True)), number, column, id_column)


def _read_parquet(path: Path, column: str, id_column: str | None) -> Iterator[Record]:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    names = file.schema_arrow.names
    for needed in filter(None, (column, id_column)):
        if needed not in names:
            raise InputError(
                f"{str(path)!r} has no column {needed!r} (columns: {names}).",
                "Pass text_column=/id_column= with one of those columns.",
                path=str(path),
            )
    import pyarrow as pa

    columns = [c for c in (column, id_column) if c]
    # Signed integer ids stay int64; any other type (uint64 beyond int64, decimals,
    # strings) is written as strings, decided by the column's type, not row by row.
    typed = bool(id_column) and pa.types.is_signed_integer(file.schema_arrow.field(id_column).type)
    number = 0
    for batch in file.iter_batches(batch_size=4096, columns=columns):
        for row in batch.to_pylist():
            number += 1
            yield row_record(row, number, column, id_column, typed=typed)


def default_errors_path(output: str) -> str:
    """Where failed records go when no errors path is given, for every runner:
    ``out.parquet`` -> ``out.errors.jsonl`` (likewise .jsonl, .npy, .json)."""
    base = output
    for suffix in (".parquet", ".jsonl", ".npy", ".json"):
        if base.endswith(suffix):
            base = base.removesuffix(suffix)
            break
    return base + ".errors.jsonl"


# -- output rows -------------------------------------------------------------------------


def json_line(row: Any) -> str:
    """One JSON line, readable UTF-8; escaped (ASCII) if it holds a lone surrogate, so an
    errors file stays valid UTF-8 whatever bad bytes the input had."""
    text = json.dumps(row, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(row, ensure_ascii=True, default=str)
    return text + "\n"


#: Columns whose values have no fixed shape (pipeline outputs, fill-mask candidates, a
#: classifier's per-label scores). JSONL keeps them nested; Parquet, where a column has one
#: type, holds them as JSON text. The local runner and ``tether beam run`` write through
#: ``prediction_columns`` and ``RowWriter``/``for_parquet``, so their outputs agree.
NESTED_COLUMNS = ("result", "scores")


def prediction_columns(task: str, inference: Any) -> dict[str, Any]:
    """The output columns of one prediction, nested values as plain Python (JSON-ready)."""
    if task == "embed":
        return {"embedding": inference}
    if task == "classify":
        return {
            "label": inference["label"],
            "score": float(inference["score"]),
            "scores": {str(k): float(v) for k, v in inference["scores"].items()},
        }
    return {"result": to_plain(inference)}


def to_plain(value: Any) -> Any:
    """numpy/torch values (and tuples) -> JSON-ready Python values, recursively.

    A PIL image (an image-segmentation mask, a depth map) becomes
    ``{"png": base64 PNG, "mode": ..., "size": [width, height]}``: lossless, and a few
    hundred bytes for a mask where a list of pixel values would be megabytes.
    """
    if type(value).__module__.startswith("PIL."):
        return _image_value(value)
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return value


def _image_value(image: Any) -> dict[str, Any]:
    import base64
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return {
        "png": base64.b64encode(buffer.getvalue()).decode("ascii"),
        "mode": image.mode,
        "size": list(image.size),
    }


def for_parquet(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its nested columns as JSON text, ready for a Parquet column."""
    return {
        key: _json_text(value) if key in NESTED_COLUMNS else value for key, value in row.items()
    }


def from_parquet(row: dict[str, Any]) -> dict[str, Any]:
    """Undo ``for_parquet``: the nested columns as values again (for JSONL)."""
    return {
        key: json.loads(value) if key in NESTED_COLUMNS and isinstance(value, str) else value
        for key, value in row.items()
    }


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_json_default)


# -- writers -----------------------------------------------------------------------------


class RowWriter:
    """Writes rows (dicts) to one file; ``close()`` finishes it. Not atomic by itself.

    Nested columns (``NESTED_COLUMNS``) are written nested in JSONL and as JSON text in
    Parquet.
    """

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
        table = _rows_to_table([for_parquet(row) for row in rows])
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
