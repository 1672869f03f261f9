"""Issue 10, runner half: every record in, every record accounted for; no clobbering.

Each test here failed on the code before the fix (see docs/runner-faults.md).
"""

import errno
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tether import ModelSpec, load
from tether.cli.main import cli
from tether.errors import InputError, OutputError
from tether.inference import runner as runner_module
from tether.inference.engine import Engine
from tether.inference.io import read_records
from tether.inference.records import Records
from tether.inference.runner import RunConfig, run_file


@pytest.fixture(scope="module")
def tiny_bert(tiny):
    return load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))


def lock_path(output):
    return type(output)(str(output) + ".tether-lock")


def ids_path(output):
    return str(output) + ".ids.jsonl"


def _errors(summary):
    with open(summary.errors_path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _run(model, path, out, **config):
    options = {k: config.pop(k) for k in ("resume", "overwrite") if k in config}
    columns = {k: config.pop(k) for k in ("text_column", "id_column", "format") if k in config}
    records = Records(str(path), **columns)
    return run_file(model, RunConfig(records, str(out), **config), progress=False, **options)


# -- records in are counted as read ---------------------------------------------------------


def test_records_in_is_counted_as_read_so_a_lost_row_is_caught(tiny_bert, tmp_path, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_text("one\ntwo\nthree\n")
    real_rows = runner_module._rows

    def lose_one(chunk, outcomes, config):
        rows, errors = real_rows(chunk, outcomes, config)
        return rows[1:], errors  # a bug that drops a row

    monkeypatch.setattr(runner_module, "_rows", lose_one)
    with pytest.raises(OutputError, match="accounting failed"):
        _run(tiny_bert, path, tmp_path / "out.parquet")


def test_records_in_counts_resumed_chunks_so_a_part_that_lost_rows_is_caught(
    tiny_bert, tmp_path, monkeypatch
):
    path = tmp_path / "in.txt"
    path.write_text("".join(f"line {i}\n" for i in range(7)))
    out = tmp_path / "out.parquet"
    real = runner_module._merge
    monkeypatch.setattr(
        runner_module, "_merge", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_bert, path, out, chunk_size=2)
    monkeypatch.setattr(runner_module, "_merge", real)
    part = tmp_path / "out.parquet.tether-parts" / "part-000001.parquet"
    pq.write_table(pq.read_table(part).slice(0, 1), part)  # a finished part lost a row
    with pytest.raises(OutputError, match="accounting failed") as info:
        _run(tiny_bert, path, out, chunk_size=2, resume=True)
    assert "records in: 7 = written 6" in info.value.message


# -- records that crashed a run: one error row each, or a normalised id ----------------------


def test_lone_surrogates_are_error_rows_and_the_errors_file_is_valid_utf8(tiny_bert, tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [
        '{"text": "fine", "id": "a"}',
        '{"text": "broken \\ud800 text", "id": "b"}',
        '{"text": "low \\udfff", "id": "c"}',
        '{"text": "ok", "id": "d\\udc80"}',
        '{"text": "pair \\ud83d\\ude00 is fine", "id": "e"}',
    ]
    path.write_text("\n".join(lines) + "\n")
    summary = _run(tiny_bert, path, tmp_path / "out.parquet", id_column="id")
    assert (summary.records, summary.written, summary.errors) == (5, 2, 3)
    errors = _errors(summary)
    assert [e["line"] for e in errors] == [2, 3, 4]
    assert all(e["kind"] == "unreadable" for e in errors)
    assert pq.read_table(tmp_path / "out.parquet").column("id").to_pylist() == ["a", "e"]


def test_mixed_missing_and_huge_ids_never_crash(tiny_bert, tmp_path):
    ids = [1, "two", 3.0, 2.5, 2**70, -(2**63), None, [1], {"k": 1}, True, ""]
    rows = [{"text": f"record {i}", "id": v} for i, v in enumerate(ids)]
    rows.append({"text": "no id at all"})
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = _run(tiny_bert, path, tmp_path / "out.parquet", id_column="id", chunk_size=3)
    assert summary.records == len(rows) == summary.written + summary.errors
    written = pq.read_table(tmp_path / "out.parquet").column("id").to_pylist()
    assert written == ["1", "two", "3", "2.5", str(2**70), str(-(2**63))]
    errors = _errors(summary)
    assert [e["line"] for e in errors] == list(range(7, len(rows) + 1))
    assert all(e["id"] is None and e["kind"] == "unreadable" for e in errors)


def test_ids_that_change_type_between_chunks_still_merge(tiny_bert, tmp_path):
    rows = [{"text": f"t{i}", "id": i} for i in range(4)]
    rows += [{"text": f"t{i}", "id": f"s{i}"} for i in range(4)]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for fmt in ("parquet", "jsonl"):
        out = tmp_path / f"out.{fmt}"
        summary = _run(tiny_bert, path, out, id_column="id", chunk_size=2)
        assert (summary.written, summary.errors) == (8, 0)
        if fmt == "parquet":
            got = pq.read_table(out).column("id").to_pylist()
        else:
            got = [json.loads(line)["id"] for line in out.read_text().splitlines()]
        assert got == [str(r["id"]) for r in rows]


def test_parquet_ids_beyond_int64_become_strings(tiny_bert, tmp_path):
    path = tmp_path / "in.parquet"
    big = [1, 2**63, 2**64 - 1]
    pq.write_table(pa.table({"text": ["a", "b", "c"], "uid": pa.array(big, pa.uint64())}), path)
    summary = _run(tiny_bert, path, tmp_path / "out.parquet", id_column="uid", chunk_size=1)
    assert summary.written == 3
    assert pq.read_table(tmp_path / "out.parquet").column("id").to_pylist() == [str(b) for b in big]


def test_invalid_utf8_in_csv_is_one_error_row(tiny_bert, tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"id,text\n1,good\n2,bad \xff byte\n3,\xc3\x28 also\n4,fine\n")
    summary = _run(tiny_bert, path, tmp_path / "out.parquet", id_column="id")
    assert (summary.records, summary.written, summary.errors) == (4, 2, 2)
    assert [e["line"] for e in _errors(summary)] == [3, 4]
    assert all("UTF-8" in e["reason"] for e in _errors(summary))


def test_invalid_utf8_in_csv_header_is_an_input_error(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"id,te\xffxt,text\n1,x,y\n")
    with pytest.raises(InputError, match="UTF-8"):
        list(read_records(path))


# -- ids never silently replaced -----------------------------------------------------------


def test_a_wrong_id_column_on_jsonl_is_never_replaced_by_line_numbers(tiny_bert, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a", "key": "k1"}\n{"text": "b", "key": "k2"}\n')
    summary = _run(tiny_bert, path, tmp_path / "out.parquet", id_column="kee")
    assert (summary.written, summary.errors) == (0, 2)
    assert all("no id field 'kee'" in e["reason"] for e in _errors(summary))


def test_a_wrong_id_column_on_csv_is_refused(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("key,text\nk1,a\n")
    with pytest.raises(InputError, match="no column 'kee'") as info:
        list(read_records(path, id_column="kee"))
    assert "id_column=" in info.value.hint


def test_npy_output_writes_its_ids_alongside(tiny_bert, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"text": "alpha", "key": "x"}\n{"text": "", "key": "y"}\n{"text": "gamma", "key": "z"}\n'
    )
    out = tmp_path / "out.npy"
    summary = _run(tiny_bert, path, out, id_column="key")
    vectors = np.load(out)
    with open(ids_path(out)) as handle:
        ids = [json.loads(line) for line in handle]
    assert len(ids) == vectors.shape[0] == summary.written == 2
    assert ids == [{"id": "x", "line": 1}, {"id": "z", "line": 3}]
    engine = Engine(tiny_bert, "embed")
    expected = [o.inference for o in engine.predict(["alpha", "gamma"])]
    np.testing.assert_allclose(vectors, np.stack(expected), rtol=1e-5, atol=1e-6)


# -- CSV record counts ------------------------------------------------------------------------


def test_csv_blank_lines_are_counted(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text\na\n\nb\n\n\nc\n")
    records = list(read_records(path))
    assert len(records) == 6  # every physical line after the header
    assert [r.line for r in records if r.problem == "blank line"] == [3, 5, 6]
    assert [r.value for r in records if r.problem is None] == ["a", "b", "c"]


def test_csv_unterminated_quote_is_an_error_row_per_swallowed_line(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('id,text\n1,fine\n2,"never closed\n3,swallowed\n4,too\n')
    records = list(read_records(path, id_column="id"))
    assert [r.line for r in records] == [2, 3, 4, 5]
    assert records[0].value == "fine"
    assert all("unterminated quote opened on line 3" in r.problem for r in records[1:])


def test_csv_stray_quote_is_an_error_row_and_reading_goes_on(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('text\n"a"b\nnext\n')
    records = list(read_records(path))
    assert [(r.line, r.problem is None) for r in records] == [(2, False), (3, True)]
    assert records[1].value == "next"


def test_csv_short_rows_are_error_rows(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,text\n1\n2,ok\n")
    records = list(read_records(path, id_column="id"))
    assert "missing" in records[0].problem and records[1].value == "ok"


# -- non-finite outputs -----------------------------------------------------------------------


def test_non_finite_model_output_is_a_model_error(tiny_bert, monkeypatch):
    engine = Engine(tiny_bert, "embed")
    real = engine.task.forward

    def forward(items):
        out = real(items)
        out[0] = np.full_like(np.asarray(out[0]), np.nan)
        if len(out) > 1:
            out[1] = np.asarray(out[1]).copy()
            out[1][0] = np.inf
        return out

    monkeypatch.setattr(engine.task, "forward", forward)
    outcomes = engine.predict(["a", "b", "c"])
    kinds = [getattr(o, "kind", "ok") for o in outcomes]
    assert sorted(kinds) == ["model-error", "model-error", "ok"]


def test_non_finite_output_is_an_error_row_in_the_local_runner(tiny_bert, tmp_path, monkeypatch):
    from tether.inference.tasks.embed import EmbedTask

    real = EmbedTask.forward

    def forward(self, items):
        return [np.full_like(np.asarray(v), np.nan) for v in real(self, items)]

    monkeypatch.setattr(EmbedTask, "forward", forward)
    path = tmp_path / "in.txt"
    path.write_text("a\nb\n")
    summary = _run(tiny_bert, path, tmp_path / "out.parquet")
    assert (summary.written, summary.errors) == (0, 2)
    assert {e["kind"] for e in _errors(summary)} == {"model-error"}


# -- locks, clashes, resume ------------------------------------------------------------------


def test_a_second_run_on_a_locked_output_is_refused(tiny_bert, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("a\n")
    out = tmp_path / "out.parquet"
    lock = lock_path(out)
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    with pytest.raises(OutputError, match="Another run is writing"):
        _run(tiny_bert, path, out, overwrite=True)
    assert not out.exists() and lock.exists()


def test_a_stale_lock_from_a_dead_run_is_taken_over(tiny_bert, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("a\nb\n")
    out = tmp_path / "out.parquet"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(out).write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
    summary = _run(tiny_bert, path, out)
    assert summary.written == 2 and not lock_path(out).exists()


def test_the_lock_is_released_when_a_run_fails(tiny_bert, tmp_path, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_text("a\n")
    out = tmp_path / "out.parquet"
    held = []

    def fail(*args):
        held.append(lock_path(out).exists())
        raise RuntimeError("merge failed")

    monkeypatch.setattr(runner_module, "_merge", fail)
    with pytest.raises(RuntimeError, match="merge failed"):
        _run(tiny_bert, path, out)
    assert held == [True] and not lock_path(out).exists()


def test_two_concurrent_cli_runs_one_is_refused(tiny, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("".join(f"line number {i}\n" for i in range(3000)))
    out = tmp_path / "out.parquet"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["src", os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, "-m", "tether", "run", str(tiny["bert"]), "-i", str(path)]
    first = subprocess.Popen(
        [*args, "-o", str(out), "--no-progress", "--chunk-size", "50"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = lock_path(out)
    while not lock.exists():
        assert first.poll() is None, first.stderr.read()
    second = CliRunner().invoke(
        cli,
        [
            "run",
            str(tiny["bert"]),
            "-i",
            str(path),
            "-o",
            str(out),
            "--overwrite",
            "--no-progress",
            "--task",
            "embed",
        ],
    )
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert second.exit_code == 2 and "Another run is writing" in second.output
    assert pq.read_table(out).num_rows == 3000


@pytest.mark.parametrize(
    "roles",
    [("input", "output"), ("input", "errors"), ("output", "errors"), ("input", "symlinked output")],
)
def test_never_write_over_the_input_or_the_output(tiny_bert, tmp_path, roles):
    path = tmp_path / "in.jsonl"
    original = '{"text": "keep me"}\n{"text": ""}\n'
    path.write_text(original)
    out, errors = tmp_path / "out.jsonl", None
    if roles == ("input", "output"):
        out = path
    elif roles == ("input", "errors"):
        errors = str(path)
    elif roles == ("output", "errors"):
        errors = str(out)
    else:
        out = tmp_path / "link.jsonl"
        out.symlink_to(path)
    with pytest.raises(OutputError, match="same file"):
        _run(tiny_bert, path, out, errors=errors, overwrite=True)
    assert path.read_text() == original


def test_cli_refuses_errors_file_equal_to_the_input(tiny, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("hello\n\n")
    result = CliRunner().invoke(
        cli, ["run", str(tiny["bert"]), "-i", str(path), "--errors", str(path), "--no-progress"]
    )
    assert result.exit_code == 2 and "same file" in result.output
    assert "--errors" in result.output
    assert path.read_text() == "hello\n\n"


def _interrupt_after_first_chunk(monkeypatch):
    real = runner_module._write_part
    calls = []

    def write_part(*args):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        real(*args)

    monkeypatch.setattr(runner_module, "_write_part", write_part)
    return real


def test_resume_refuses_an_input_changed_with_the_same_size_and_mtime(
    tiny_bert, tmp_path, monkeypatch
):
    path = tmp_path / "in.txt"
    path.write_text("aaaa\nbbbb\ncccc\n")
    out = tmp_path / "out.parquet"
    real = _interrupt_after_first_chunk(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_bert, path, out, chunk_size=2)
    monkeypatch.setattr(runner_module, "_write_part", real)
    stat = path.stat()
    path.write_text("xxxx\nbbbb\ncccc\n")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(OutputError, match="changed since the interrupted run"):
        _run(tiny_bert, path, out, chunk_size=2, resume=True)


def test_resume_accepts_an_unchanged_input_with_a_new_mtime(tiny_bert, tmp_path, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_text("aaaa\nbbbb\ncccc\n")
    reference = _run(tiny_bert, path, tmp_path / "ref.parquet", chunk_size=2)
    out = tmp_path / "out.parquet"
    real = _interrupt_after_first_chunk(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_bert, path, out, chunk_size=2)
    monkeypatch.setattr(runner_module, "_write_part", real)
    path.write_text(path.read_text())  # rewritten, same content: new mtime
    summary = _run(tiny_bert, path, out, chunk_size=2, resume=True)
    assert summary.resumed_chunks == 1 and summary.written == reference.written
    assert out.read_bytes() == (tmp_path / "ref.parquet").read_bytes()


def test_resume_does_not_replace_a_finished_output(tiny_bert, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("a\nb\n")
    out = tmp_path / "out.parquet"
    _run(tiny_bert, path, out)
    before = out.read_bytes()
    with pytest.raises(OutputError, match="no interrupted run") as info:
        _run(tiny_bert, path, out, task="classify", output_format="parquet", resume=True)
    assert "overwrite=True" in info.value.hint
    assert out.read_bytes() == before


# -- faults -----------------------------------------------------------------------------------


def test_disk_full_is_one_clear_error_and_resume_then_works(tiny_bert, tmp_path, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_text("".join(f"record {i}\n" for i in range(9)))
    _run(tiny_bert, path, tmp_path / "ref.parquet", chunk_size=2)
    out = tmp_path / "out.parquet"
    real = runner_module._write_part
    calls = []

    def full(*args):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(args[0]))
        real(*args)

    monkeypatch.setattr(runner_module, "_write_part", full)
    with pytest.raises(OutputError, match="No space left") as info:
        _run(tiny_bert, path, out, chunk_size=2)
    assert "resume=True" in info.value.hint
    monkeypatch.setattr(runner_module, "_write_part", real)
    summary = _run(tiny_bert, path, out, chunk_size=2, resume=True)
    assert summary.resumed_chunks == 2 and summary.records == 9
    assert out.read_bytes() == (tmp_path / "ref.parquet").read_bytes()


def test_cli_disk_full_and_read_only_are_one_line_exit_2(tiny, tmp_path, monkeypatch):
    # Tests run as root, which ignores chmod: the faults come from a seam instead.
    path = tmp_path / "in.txt"
    path.write_text("a\nb\n")
    for code, text in ((errno.ENOSPC, "No space left"), (errno.EROFS, "Read-only")):

        def fail(*args, code=code):
            raise OSError(code, os.strerror(code), str(tmp_path / "out.parquet"))

        monkeypatch.setattr(runner_module, "_merge", fail)
        result = CliRunner().invoke(
            cli,
            ["run", str(tiny["bert"]), "-i", str(path), "-o", str(tmp_path / "out.parquet"),
             "--no-progress", "--overwrite"],
        )  # fmt: skip
        assert result.exit_code == 2, result.output
        assert text in result.output and "Traceback" not in result.output
        assert result.output.count("error:") == 1


def test_cli_torch_unpickling_refusal_is_one_line_exit_2(tiny, tmp_path, monkeypatch):
    import pickle

    import tether.models.loading as loading

    def refuse(spec):
        raise pickle.UnpicklingError("Weights only load failed. Unsupported global: os.system")

    monkeypatch.setattr(loading, "load", refuse)
    path = tmp_path / "in.txt"
    path.write_text("a\n")
    result = CliRunner().invoke(cli, ["run", str(tiny["bert"]), "-i", str(path), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "refused to unpickle" in result.output and "os.system" in result.output


def test_the_helpers_name_the_files_the_runner_writes(tmp_path):
    from tether.inference import lock, runner

    out = tmp_path / "out.npy"
    assert lock.lock_path(out) == lock_path(out)
    assert runner.ids_path(out) == ids_path(out)
