import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import expected_label
from tether import ModelSpec, TetherError, load
from tether.cli.main import cli
from tether.inference.engine import Engine
from tether.inference.records import Records
from tether.inference.runner import RunConfig, run_file


@pytest.fixture(scope="module")
def tiny_bert(tiny):
    return load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))


def _lines(n):
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "hello", "world"]
    return [" ".join(words[(i * 7 + j) % len(words)] for j in range(1 + i % 13)) for i in range(n)]


def test_every_kind_of_bad_record_is_accounted_for(tiny_bert, tmp_path):
    rows = [
        '{"text": "a good record", "key": "k1"}',
        '{"text": "", "key": "k2"}',
        '{"text": "   \\t ", "key": "k3"}',
        '{"text": 42, "key": "k4"}',
        '{"text": null, "key": "k5"}',
        '{"text": ["a", "list"], "key": "k6"}',
        '{"text": "unterminated',
        '{"body": "no text field", "key": "k8"}',
        '"just a string"',
        "",
        json.dumps({"text": "word " * 1000, "key": "k11"}),
        '{"text": "another good one", "key": "k12"}',
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out.parquet"
    summary = run_file(
        tiny_bert, RunConfig(Records(str(path), id_column="key"), str(out)), progress=False
    )
    assert summary.records == len(rows) == summary.written + summary.errors
    assert (summary.written, summary.errors, summary.truncated) == (3, 9, 1)
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == ["k1", "k11", "k12"]
    with open(summary.errors_path) as handle:
        errors = [json.loads(line) for line in handle]
    assert [e["line"] for e in errors] == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert [e["kind"] for e in errors] == [
        "empty",
        "empty",
        "not-text",
        "not-text",
        "not-text",
        "unreadable",
        "unreadable",
        "unreadable",
        "unreadable",
    ]
    assert all(e["reason"] for e in errors)


def test_runner_output_equals_engine_output(tiny_bert, tmp_path):
    texts = _lines(300)
    path = tmp_path / "in.txt"
    path.write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.parquet"
    run_file(tiny_bert, RunConfig(str(path), str(out), chunk_size=64), progress=False)
    got = np.array(pq.read_table(out).column("embedding").to_pylist(), dtype=np.float32)
    expected = np.stack([o.inference for o in Engine(tiny_bert, "embed").predict(texts)])
    assert np.abs(got - expected).max() <= 1e-6
    assert pq.read_table(out).column("line").to_pylist() == list(range(1, 301))


def test_csv_and_parquet_inputs_with_id_columns(tiny_bert, tmp_path):
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("doc,body\nd1,hello world\nd2,\nd3,the quick fox\n")
    out = tmp_path / "csv.jsonl"
    summary = run_file(
        tiny_bert,
        RunConfig(Records(str(csv_path), text_column="body", id_column="doc"), str(out)),
        progress=False,
    )
    assert (summary.written, summary.errors) == (2, 1)
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["d1", "d3"]
    pq_out = tmp_path / "again.parquet"
    pq.write_table(pa.table({"text": ["x y", "hello"]}), tmp_path / "in.parquet")
    summary = run_file(
        tiny_bert, RunConfig(str(tmp_path / "in.parquet"), str(pq_out)), progress=False
    )
    assert summary.written == 2


def test_existing_output_is_not_clobbered(tiny_bert, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("hello\n")
    out = tmp_path / "out.parquet"
    run_file(tiny_bert, RunConfig(str(path), str(out)), progress=False)
    with pytest.raises(TetherError, match="already exists") as info:
        run_file(tiny_bert, RunConfig(str(path), str(out)), progress=False)
    assert "overwrite=True" in info.value.hint
    run_file(tiny_bert, RunConfig(str(path), str(out)), overwrite=True, progress=False)


def test_npy_output_only_for_embeddings(tiny_bert, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("hello\n")
    with pytest.raises(TetherError, match="embeddings only"):
        run_file(
            tiny_bert,
            RunConfig(str(path), str(tmp_path / "o.npy"), task="classify"),
            progress=False,
        )


def _run_cli(args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "tether", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_same_output(tiny, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("\n".join(_lines(12_000)) + "\n\n")  # one empty line: an error row too
    common = ["run", str(tiny["bert"]), "-i", str(path), "--chunk-size", "100", "--no-progress"]
    reference = tmp_path / "reference.parquet"
    done = _run_cli([*common, "-o", str(reference)])
    assert done.wait(timeout=300) == 0, done.stderr.read()

    out = tmp_path / "out.parquet"
    parts = tmp_path / "out.parquet.tether-parts"
    proc = _run_cli([*common, "-o", str(out)])
    deadline = time.time() + 120
    while len(list(parts.glob("part-*.parquet"))) < 5:
        assert proc.poll() is None, "the run finished before it could be killed"
        assert time.time() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    finished = len(list(parts.glob("part-*.parquet")))
    assert 5 <= finished < 121

    refused = CliRunner().invoke(cli, [*common, "-o", str(out)])
    assert refused.exit_code == 2 and "--resume" in refused.output
    resumed = _run_cli([*common, "-o", str(out), "--resume"])
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    summary = resumed.stdout.read()
    assert "records in: 12001 = written 12000 + errors 1" in summary
    assert "resumed after" in summary
    assert out.read_bytes() == reference.read_bytes()
    assert (tmp_path / "out.errors.jsonl").read_text() == (
        tmp_path / "reference.errors.jsonl"
    ).read_text()
    assert not parts.exists()


def test_resume_with_other_settings_is_refused(tiny_bert, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("hello\nworld\n")
    out = tmp_path / "out.parquet"
    parts = tmp_path / "out.parquet.tether-parts"
    parts.mkdir()
    (parts / "run.json").write_text(json.dumps({"fingerprint": "something else"}))
    with pytest.raises(TetherError, match="other settings"):
        run_file(tiny_bert, RunConfig(str(path), str(out)), resume=True, progress=False)


@pytest.mark.slow
def test_peak_memory_is_flat_in_the_input_size(tiny, tmp_path):
    """60k lines must cost about what 3k lines cost: the runner streams."""

    def peak_rss_mb(lines):
        path = tmp_path / f"in-{lines}.txt"
        path.write_text("\n".join(_lines(lines)) + "\n")
        code = (
            "import resource, sys\n"
            "from tether.cli.main import main\n"
            "try:\n"
            f"    main(['run', {str(tiny['bert'])!r}, '-i', {str(path)!r}, '-o', "
            f"{str(path) + '.parquet'!r}, '--no-progress'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600
        )
        return int(proc.stdout.split("PEAK")[1])

    small, large = peak_rss_mb(3_000), peak_rss_mb(60_000)
    assert large - small < 120, (small, large)


def test_cli_run_prints_the_accounting_line(tiny, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("the quick [MASK] fox\nno mask\n")
    out = tmp_path / "fill.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(tiny["bert-mlm"]),
            "-i",
            str(path),
            "--task",
            "fill-mask",
            "--top-k",
            "2",
            "-o",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "records in: 2 = written 1 + errors 1" in result.output
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(row["result"][0]) == 2  # nested in JSONL, as tether beam run writes it


def test_cli_task_option_runs_any_pipeline_task(tiny, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("good great\nbad awful\n")
    out = tmp_path / "cls.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(tiny["distilbert-cls"]),
            "-i",
            str(path),
            "--task",
            "text-classification",
            "-o",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    labels = [row["result"]["label"] for row in rows]
    assert labels == [
        expected_label(tiny["distilbert-cls"], t) for t in ("good great", "bad awful")
    ]


def test_cli_embed_defaults_to_the_shipped_model(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("hello world\n\n")
    result = CliRunner().invoke(cli, ["embed", "-i", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "in.embed.parquet")
    assert len(table.column("embedding")[0]) == 384


def test_cli_top_k_is_refused_for_embed(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("hello\n")
    result = CliRunner().invoke(cli, ["run", "-i", str(path), "--top-k", "3"])
    assert result.exit_code == 2 and "--top-k applies to fill-mask" in result.output
