"""``Records``: one description of an input file, checked when built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tether import InputError, Records
from tether.inference.records import as_records


def test_the_format_comes_from_the_extension_and_paths_become_strings(tmp_path):
    assert Records(tmp_path / "a.jsonl").format == "jsonl"
    assert Records(str(tmp_path / "a.csv")).format == "csv"
    assert Records(tmp_path / "a.txt").format == "text"
    assert Records(tmp_path / "data", format="parquet").format == "parquet"
    assert isinstance(Records(tmp_path / "a.jsonl").path, str)
    assert Records(tmp_path / "a.jsonl").text_field == "text"
    assert Records(tmp_path / "a.jsonl", text_column="body").text_field == "body"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": ""}, "Records.path must name a file"),
        ({"path": "a.jsonl", "text_column": " "}, "Records.text_column must be a non-empty"),
        ({"path": "a.txt", "label_column": "label"}, r"plain text .* label_column"),
        ({"path": "a.jsonl", "format": "xml"}, "Unknown input format 'xml'"),
    ],
)
def test_bad_descriptions_are_refused_naming_the_argument(kwargs, message):
    with pytest.raises(InputError, match=message):
        Records(**kwargs)


def test_labels_are_read_beside_the_records_with_the_same_line_numbers(tmp_path):
    path = tmp_path / "t.jsonl"
    rows = [{"text": "a", "g": "x"}, {"text": "b"}, {"text": "c", "g": None}, {"text": "d", "g": 3}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    got = [
        (record.line, record.value, label, problem is not None)
        for record, label, problem in Records(path, label_column="g").read_labelled()
    ]
    assert got == [
        (1, "a", "x", False),
        (2, "b", None, True),
        (3, "c", None, True),
        (4, "d", "3", False),
    ]
    assert Records(path).count() == 4


def test_require_file_and_refuse_labels_fail_before_a_model_loads(tmp_path):
    with pytest.raises(InputError, match="does not exist") as caught:
        Records(tmp_path / "missing.jsonl").require_file()
    assert caught.value.path == str(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="only `tether beam run` reads"):
        Records("gs://bucket/*.jsonl").require_file()
    with pytest.raises(InputError, match="the runner does not read labels"):
        Records("a.jsonl", label_column="g").refuse_labels("the runner")


def test_as_records_takes_a_records_or_a_path_and_refuses_anything_else():
    records = Records("a.jsonl", id_column="id")
    assert as_records(records) is records
    assert as_records(Path("b.csv")).format == "csv"
    with pytest.raises(InputError, match="data= must be a Records"):
        as_records(42, "data")  # type: ignore[arg-type]
