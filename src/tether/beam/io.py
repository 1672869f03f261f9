"""Beam readers and writers for ``tether beam run``: files in, rows and error rows out.

Readers take a ``Records`` (the description of an input file that the local runner,
``cluster()`` and ``Model.encode`` take too) and give ``(key, text)`` pairs, where the
key is the ``--id-column`` value (or
the line number of a text, JSONL or CSV file); a row that cannot be read (bad JSON,
invalid UTF-8, missing column) becomes an error row instead of failing the job. Text,
JSONL and CSV files go through the local runner's reading core
(``tether.inference.io.read_stream``), so both read a file into the same records.
Every path goes through Beam's FileSystems, so local paths, ``gs://`` and ``s3://``
all work where the matching Beam extra is installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.metrics.metric import Metrics

from tether.errors import InputError
from tether.inference.io import (
    Record,
    for_parquet,
    prediction_columns,
    read_stream,
    row_record,
    to_plain,
)
from tether.inference.records import Records
from tether.inference.results import RecordError

#: Beam writes Parquet and JSONL (not .npy, which needs one writer for all rows).
OUTPUT_FORMATS = ("parquet", "jsonl")
ERRORS = "errors"
RUN_NAMESPACE = "tether.run"


class ReadRecords(beam.PTransform):
    """The file(s) a ``Records`` names -> ``(key, text)`` pairs, plus an ``errors`` output
    of ``(key, RecordError)``. ``records.path`` may be a glob or a ``gs://`` path."""

    def __init__(self, records: Records) -> None:
        super().__init__()
        if not isinstance(records, Records):
            raise InputError(
                f"ReadRecords takes a Records, got {type(records).__name__}.",
                "Pass ReadRecords(Records('data.jsonl', text_column='body')).",
            )
        records.refuse_labels("tether beam run")
        self._records = records

    def expand(self, pbegin: Any) -> Any:
        records = self._records
        path, fmt, id_column = records.path, records.fmt, records.id_column
        if fmt == "parquet":
            columns = [records.text_field] + ([id_column] if id_column else [])
            rows = (
                pbegin
                | "ReadParquet" >> beam.io.ReadFromParquet(path, columns=columns)
                | "ParquetRecords" >> beam.Map(_parquet_record, records.text_field, id_column)
            )
        else:
            # Whole files through tether's own reading core (the local runner's), so a
            # file gives the same records, line numbers and error rows as `tether run`,
            # and an invalid byte is one error row instead of a failed job.
            rows = (
                pbegin
                | "Match" >> fileio.MatchFiles(path)
                | "Open" >> fileio.ReadMatches()
                | "Read" >> beam.FlatMap(_file_records, fmt, records.text_column, id_column)
                | "Spread" >> beam.Reshuffle()
            )
        return rows | "ToRecords" >> beam.ParDo(_ToRecord(id_column)).with_outputs(
            ERRORS, main="records"
        )


def _file_records(
    readable: Any, fmt: str, text_column: str | None, id_column: str | None
) -> Iterator[Record]:
    with readable.open() as handle:
        yield from read_stream(handle, fmt, text_column, id_column, name=readable.metadata.path)


def _parquet_record(row: dict[str, Any], text_column: str, id_column: str | None) -> Record:
    record = row_record(row, 0, text_column, id_column, typed=True)
    return Record(0, record.id if id_column else None, record.value, record.problem)


class _ToRecord(beam.DoFn):
    def __init__(self, id_column: str | None) -> None:
        self._id_column = id_column

    def process(self, record: Record) -> Any:
        Metrics.counter(RUN_NAMESPACE, "read").inc()
        key = record.id
        if record.problem is not None:
            kind = "missing-column" if record.problem.startswith("no ") else "bad-row"
            where = f"line {record.line}: " if record.line else ""
            yield _read_error(key, record.value, where + record.problem, kind)
        else:
            yield key, record.value


def _read_error(key: Any, row: Any, reason: str, kind: str) -> Any:
    return beam.pvalue.TaggedOutput(ERRORS, (key, RecordError(row, reason, kind)))


# -- output rows ----------------------------------------------------------------------


def prediction_row(element: tuple[Any, Any], task: str, fmt: str) -> dict[str, Any]:
    """One output row for a ``(key, PredictionResult)``: the local runner's columns, nested
    values nested in JSONL and JSON text in Parquet (``tether.inference.io``)."""
    key, result = element
    Metrics.counter(RUN_NAMESPACE, "written").inc()
    row: dict[str, Any] = {
        "id": _key_value(key, fmt),
        "text": result.example,
        "model_id": result.model_id,
    }
    columns = prediction_columns(task, result.inference)
    if "embedding" in columns:
        columns["embedding"] = [float(x) for x in columns["embedding"]]
    row.update(columns)
    return for_parquet(row) if fmt == "parquet" else row


def error_row(element: tuple[Any, RecordError]) -> dict[str, Any]:
    """One errors-file row for a ``(key, RecordError)``."""
    key, error = element
    Metrics.counter(RUN_NAMESPACE, "errors").inc()
    example = error.example
    if not isinstance(example, str | dict | int | float | type(None)):
        example = repr(example)
    return {
        "id": _key_value(key, "jsonl"),
        "input": to_plain(example),
        "reason": error.reason,
        "kind": error.kind,
    }


def parquet_schema(task: str) -> Any:
    import pyarrow as pa

    fields = [("id", pa.string()), ("text", pa.string()), ("model_id", pa.string())]
    if task == "embed":
        fields.append(("embedding", pa.list_(pa.float32())))
    elif task == "classify":
        fields += [("label", pa.string()), ("score", pa.float64()), ("scores", pa.string())]
    else:
        fields.append(("result", pa.string()))
    return pa.schema(fields)


class WriteRows(beam.PTransform):
    """Rows -> one Parquet or JSONL file (``num_shards=1``) or sharded files."""

    def __init__(self, path: str, fmt: str, task: str, num_shards: int = 1) -> None:
        super().__init__()
        self._path, self._fmt, self._task, self._num_shards = path, fmt, task, num_shards

    def expand(self, rows: Any) -> Any:
        single = self._num_shards == 1
        shard_args: dict[str, Any] = {"num_shards": self._num_shards}
        if single:
            shard_args["shard_name_template"] = ""
        if self._fmt == "parquet":
            return rows | "WriteParquet" >> beam.io.WriteToParquet(
                self._path, parquet_schema(self._task), **shard_args
            )
        return (
            rows
            | "ToJson" >> beam.Map(json.dumps, ensure_ascii=False)
            | "WriteJsonl" >> beam.io.WriteToText(self._path, **shard_args)
        )


def _key_value(key: Any, fmt: str) -> Any:
    if key is None:
        return None
    return str(key) if fmt == "parquet" else to_plain(key)
