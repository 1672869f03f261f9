import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tether import InputError
from tether.inference.io import RowWriter, count_records, read_records


def test_text_reader_numbers_lines_and_flags_bad_utf8(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"first\n\nthird \xff bad\nlast")
    records = list(read_records(path))
    assert [(r.line, r.value) for r in records if r.problem is None] == [
        (1, "first"),
        (2, ""),
        (4, "last"),
    ]
    assert "UTF-8" in records[2].problem
    assert count_records(path, "text") == 4


def test_jsonl_reader_reports_malformed_lines(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "ok", "key": "a"}\n{broken\n[1, 2]\n{"body": "x"}\n\n')
    records = list(read_records(path, id_column="key"))
    assert records[0].value == "ok" and records[0].id == "a"
    assert "malformed JSON" in records[1].problem
    assert "JSON object" in records[2].problem
    assert "no 'text' field" in records[3].problem
    assert records[4].problem == "blank line"


def test_csv_reader_uses_columns_and_line_numbers(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('id,body\n7,"hello, world"\n8,"multi\nline"\n9,x,extra\n')
    records = list(read_records(path, text_column="body", id_column="id"))
    assert [(r.id, r.value) for r in records[:2]] == [("7", "hello, world"), ("8", "multi\nline")]
    assert records[2].problem and "extra" in records[2].problem
    with pytest.raises(InputError, match="no column 'text'"):
        list(read_records(path))


def test_parquet_reader_streams_rows(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": ["a", None, "c"], "uid": [10, 11, 12]}), path)
    records = list(read_records(path, id_column="uid"))
    assert [(r.line, r.id, r.value) for r in records] == [(1, 10, "a"), (2, 11, None), (3, 12, "c")]
    assert count_records(path, "parquet") == 3


def test_unknown_extension_needs_an_explicit_format(tmp_path):
    path = tmp_path / "in.dat"
    path.write_text("x\n")
    with pytest.raises(InputError, match="Pass the format explicitly"):
        list(read_records(path))
    assert [r.value for r in read_records(path, fmt="text")] == ["x"]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "npy"])
def test_writers_round_trip_embeddings(tmp_path, fmt):
    vectors = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    path = tmp_path / f"out.{fmt}"
    writer = RowWriter(path, fmt)
    writer.write([{"id": i, "embedding": v} for i, v in enumerate(vectors[:3])])
    writer.write([{"id": i + 3, "embedding": v} for i, v in enumerate(vectors[3:])])
    writer.close()
    if fmt == "parquet":
        table = pq.read_table(path)
        assert table.schema.field("embedding").type == pa.list_(pa.float32(), 4)
        got = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    elif fmt == "jsonl":
        got = np.array(
            [json.loads(line)["embedding"] for line in path.read_text().splitlines()],
            dtype=np.float32,
        )
    else:
        got = np.load(path)
    assert np.array_equal(got, vectors)
