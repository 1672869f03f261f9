"""Issue 10: Beam reads a file into the same records and error rows as the local runner,
and one bad byte is one error row, not a failed job."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import optional_import

optional_import("apache_beam", "beam")

import apache_beam as beam  # noqa: E402
from apache_beam.testing import test_pipeline  # noqa: E402
from apache_beam.testing.util import assert_that, equal_to  # noqa: E402

from tether import ModelSpec, Records, load  # noqa: E402
from tether.beam.handlers import TetherModel  # noqa: E402
from tether.beam.io import ReadRecords  # noqa: E402
from tether.cli.main import cli  # noqa: E402
from tether.inference.engine import Engine  # noqa: E402
from tether.inference.io import read_records  # noqa: E402

FILES = {
    "text": b"plain line\nbad \xff byte\n\nlast line without newline",
    "jsonl": (
        b'{"text": "good", "id": 7}\n'
        b'{"text": "bad \xfe", "id": 8}\n'
        b"\n"
        b"{broken\n"
        b'{"text": "lone \\ud800", "id": 9}\n'
        b'{"body": "no text", "id": 10}\n'
        b'{"text": "no id"}\n'
        b'{"text": "mixed id", "id": "x"}\n'
    ),
    "csv": (
        b"id,text\n"
        b"1,good\n"
        b"2,bad \xc3\x28\n"
        b"\n"
        b'3,"quoted\nnewline"\n'
        b"4,too,many\n"
        b'5,"never closed\n'
        b"6,swallowed\n"
    ),
}


def _local(path, fmt, id_column):
    records, errors = [], []
    for r in read_records(path, fmt, id_column=id_column):
        if r.problem is None:
            records.append((r.id, r.value))
        else:
            errors.append((r.id, f"line {r.line}: {r.problem}"))
    return records, errors


@pytest.mark.parametrize("fmt", ["text", "jsonl", "csv"])
def test_beam_reads_the_same_records_and_error_rows_as_the_local_runner(tmp_path, fmt):
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(FILES[fmt])
    id_column = None if fmt == "text" else "id"
    records, errors = _local(path, fmt, id_column)
    assert records and errors  # the file has both, so the comparison means something
    with test_pipeline.TestPipeline() as p:
        out = p | ReadRecords(Records(str(path), fmt, id_column=id_column))
        assert_that(out.records, equal_to(records), label="Records")
        assert_that(
            out.errors | beam.MapTuple(lambda key, error: (key, error.reason)),
            equal_to(errors),
            label="Errors",
        )


def test_beam_run_survives_invalid_utf8(tiny, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(FILES["jsonl"])
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        cli, ["beam", "run", str(tiny["bert"]), "-i", str(source), "--id-column", "id",
              "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = [json.loads(line) for line in out.read_text().splitlines()]
    errors = [json.loads(line) for line in (tmp_path / "out.errors.jsonl").open()]
    assert sorted(r["id"] for r in written) == ["7", "x"]
    assert len(written) + len(errors) == FILES["jsonl"].count(b"\n")
    assert any("UTF-8" in e["reason"] or "JSON" in e["reason"] for e in errors)


def test_beam_handler_turns_non_finite_outputs_into_model_errors(tiny, monkeypatch):
    engine = Engine(load(ModelSpec(str(tiny["bert"]), model_class="AutoModel")), "embed")
    real = engine.task.forward

    def forward(items):
        out = real(items)
        out[0] = np.full_like(np.asarray(out[0]), np.inf)
        return out

    monkeypatch.setattr(engine.task, "forward", forward)
    rows, _, _ = TetherModel(engine).predict(["one", "two"])
    statuses = sorted(status for status, _ in rows)
    assert statuses == ["error", "ok"]
    assert [value[1] for status, value in rows if status == "error"] == ["model-error"]


@pytest.mark.parametrize("target", ["-o", "--errors"])
def test_beam_run_never_writes_over_its_input(tiny, tmp_path, target):
    source = tmp_path / "in.jsonl"
    original = '{"text": "keep me"}\n{"text": ""}\n'
    source.write_text(original)
    args = ["beam", "run", str(tiny["bert"]), "-i", str(source)]
    if target == "-o":
        args += ["-o", str(source), "--output-format", "jsonl"]
    else:
        args += ["-o", str(tmp_path / "out.jsonl"), "--errors", str(source)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "same file" in result.output, result.output
    assert source.read_text() == original
