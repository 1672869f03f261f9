"""`tether beam run` end to end on small files (DirectRunner)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import expected_label, optional_import

optional_import("apache_beam", "beam")

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tether import ModelSpec, load  # noqa: E402
from tether.cli.main import cli  # noqa: E402
from tether.inference.engine import Engine  # noqa: E402

ROWS = [
    {"id": 10, "text": "hello world, the quick fox"},
    {"id": 11, "text": ""},
    {"id": 12, "text": "tether keeps the model you run exactly the model you tested"},
    {"id": 13, "text": "word " * 900},  # overlong: truncated, still written
    {"id": 14, "body": "no text column"},
    {"id": 15, "text": "short"},
]


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_jsonl_to_parquet_keeps_ids_and_writes_every_bad_row_to_errors(tiny, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", ROWS)
    out, errors = tmp_path / "out" / "emb.parquet", tmp_path / "out" / "bad.jsonl"
    result = invoke(
        "beam", "run", str(tiny["bert"]), "-i", str(source), "--id-column", "id",
        "-o", str(out), "--errors", str(errors),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"read 7 records; wrote 4 to {out}, 3 errors to {errors}" in result.output
    table = pq.read_table(out).to_pylist()
    assert sorted(r["id"] for r in table) == ["10", "12", "13", "15"]
    engine = Engine(load(ModelSpec(str(tiny["bert"]), model_class="AutoModel")), "embed")
    for row in table:
        [expected] = engine.predict([row["text"]])
        assert np.abs(np.asarray(row["embedding"]) - expected.inference).max() <= 1e-6
    bad = read_jsonl(errors)
    assert sorted(((e["id"], e["kind"]) for e in bad), key=str) == [
        ("11", "empty"),  # ids from JSONL are normalised to strings, as in Parquet output
        ("14", "missing-column"),
        (None, "bad-row"),
    ]
    assert all(e["reason"] for e in bad)


def test_csv_with_quoted_newlines_to_jsonl_classify(tiny, tmp_path):
    source = tmp_path / "in.csv"
    with source.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["key", "review"])
        writer.writeheader()
        writer.writerows(
            [
                {"key": "a", "review": "great film,\nwould watch again"},
                {"key": "b", "review": "dull"},
                {"key": "c", "review": "  "},
            ]
        )
    out = tmp_path / "out.jsonl"
    result = invoke(
        "beam", "run", str(tiny["distilbert-cls"]), "--task", "classify", "-i", str(source),
        "--text-column", "review", "--id-column", "key", "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in read_jsonl(out)}
    assert sorted(rows) == ["a", "b"]
    assert rows["a"]["text"] == "great film,\nwould watch again"
    assert rows["a"]["label"] == expected_label(tiny["distilbert-cls"], rows["a"]["text"])
    assert sum(rows["a"]["scores"].values()) == pytest.approx(1.0)
    [error] = read_jsonl(tmp_path / "out.errors.jsonl")
    assert (error["id"], error["kind"]) == ("c", "empty")


def test_text_lines_fill_mask_with_top_k(tiny, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("the quick [MASK] fox\nno mask in this line\nhello [MASK]\n")
    out = tmp_path / "out.jsonl"
    result = invoke(
        "beam", "run", str(tiny["bert-mlm"]), "--task", "fill-mask", "--top-k", "2",
        "-i", str(source), "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = read_jsonl(out)
    assert sorted(r["text"] for r in rows) == ["hello [MASK]", "the quick [MASK] fox"]
    assert all(len(r["result"][0]) == 2 for r in rows)
    [error] = read_jsonl(tmp_path / "out.errors.jsonl")
    assert error["kind"] == "no-mask" and error["input"] == "no mask in this line"


def test_parquet_input_with_a_pipeline_task(tiny, tmp_path):
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"doc": ["good", "bad", "fine"], "n": [1, 2, 3]}), source)
    out = tmp_path / "out.parquet"
    result = invoke(
        "beam", "run", str(tiny["distilbert-cls"]), "--task", "text-classification",
        "-i", str(source), "--text-column", "doc", "--id-column", "n", "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out).to_pylist()
    assert sorted(r["id"] for r in rows) == ["1", "2", "3"]
    texts = {"1": "good", "2": "bad", "3": "fine"}
    for row in rows:
        label = json.loads(row["result"])["label"]
        assert label == expected_label(tiny["distilbert-cls"], texts[row["id"]])


def test_unknown_pass_through_option_is_an_error_not_dropped(tiny, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", ROWS[:1])
    result = CliRunner().invoke(
        cli,
        ["beam", "run", str(tiny["bert"]), "-i", str(source), "-o", str(tmp_path / "o.jsonl"),
         "--temp-location", "/tmp"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "Unknown option(s): --temp-location" in result.output


def test_unknown_extension_names_the_format_option(tiny, tmp_path):
    source = tmp_path / "in.xml"
    source.write_text("<a/>")
    result = CliRunner().invoke(
        cli, ["beam", "run", str(tiny["bert"]), "-i", str(source), "-o", str(tmp_path / "o.jsonl")]
    )
    assert result.exit_code == 2
    assert "--input-format" in result.output


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
@pytest.mark.parametrize(
    ("model", "task", "column"),
    [("bert-mlm", "fill-mask", "result"), ("distilbert-cls", "classify", "scores")],
)
def test_local_and_beam_runs_write_the_same_nested_columns(
    tiny, tmp_path, fmt, model, task, column
):
    """One writer: nested values are nested in JSONL and JSON text in Parquet, in both runners."""
    source = tmp_path / "in.jsonl"
    texts = ["the quick [MASK] fox", "hello [MASK] world", "a [MASK] day"]
    source.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    outputs = {}
    for runner in ("local", "beam"):
        out = tmp_path / f"{runner}.{fmt}"
        command = ["run"] if runner == "local" else ["beam", "run"]
        extra = ["--no-progress"] if runner == "local" else []
        extra += ["--top-k", "2"] if task == "fill-mask" else []
        result = invoke(
            *command, str(tiny[model]), "--task", task, "-i", str(source),
            "--id-column", "id", "-o", str(out), *extra,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        rows = read_jsonl(out) if fmt == "jsonl" else pq.read_table(out).to_pylist()
        outputs[runner] = {str(r["id"]): r[column] for r in rows}
    assert outputs["local"] == outputs["beam"] and len(outputs["local"]) == 3
    value = outputs["local"]["0"]
    if fmt == "parquet":
        assert isinstance(value, str)
        value = json.loads(value)
    assert isinstance(value, dict if column == "scores" else list)


@pytest.mark.slow
def test_multi_process_direct_runner_run_adds_up(tiny, tmp_path):
    rows = [{"id": i, "text": f"record number {i} " + "x " * (i % 13)} for i in range(60)]
    source = write_jsonl(tmp_path / "in.jsonl", [*rows, {"id": 99, "text": ""}])
    out = tmp_path / "out.jsonl"
    result = invoke(
        "beam", "run", str(tiny["bert"]), "-i", str(source), "--id-column", "id",
        "-o", str(out), "--direct-running-mode", "multi_processing",
        "--direct-num-workers", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "read 62 records; wrote 60" in result.output
    # ids from JSONL are normalised to strings (one id type whatever the rows hold)
    assert sorted(r["id"] for r in read_jsonl(out)) == sorted(str(i) for i in range(60))
    assert len(read_jsonl(tmp_path / "out.errors.jsonl")) == 2


def test_image_classification_over_a_list_of_paths_on_the_direct_runner(tiny, tmp_path):
    from PIL import Image
    from transformers import pipeline

    from tether.bundles.probes import probe_images

    paths = []
    for i, array in enumerate(probe_images(3)):
        paths.append(str(tmp_path / f"img-{i}.png"))
        Image.fromarray(array).save(paths[-1])
    source = tmp_path / "images.txt"
    source.write_text("\n".join([*paths, str(tmp_path / "missing.png")]) + "\n")
    out = tmp_path / "out.jsonl"
    result = invoke(
        "beam", "run", str(tiny["vit"]), "--task", "image-classification",
        "-i", str(source), "-o", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    plain = pipeline("image-classification", model=str(tiny["vit"]), device="cpu")
    expected = {p: plain(Image.open(p).convert("RGB")) for p in paths}
    rows = read_jsonl(out)
    assert sorted(r["text"] for r in rows) == sorted(paths)
    for row in rows:
        got = {item["label"]: item["score"] for item in row["result"]}
        want = {item["label"]: item["score"] for item in expected[row["text"]]}
        assert got.keys() == want.keys() and all(abs(got[k] - want[k]) <= 1e-5 for k in want)
    [error] = read_jsonl(tmp_path / "out.errors.jsonl")
    assert error["kind"] == "missing-file"


def _plain_pipeline_output(task: str, model: Path, path: str, **call: Any) -> Any:
    from PIL import Image
    from transformers import pipeline

    plain = pipeline(task, model=str(model), device="cpu")
    if task == "automatic-speech-recognition":
        import soundfile

        data, rate = soundfile.read(path, dtype="float32")
        return plain({"raw": data, "sampling_rate": rate}, **call)
    return plain(Image.open(path).convert("RGB"), **call)


@pytest.mark.parametrize(
    ("model", "task", "args"),
    [
        ("yolos", "object-detection", ["--pipeline-arg", "threshold=0.0"]),
        ("segformer", "image-segmentation", []),
        ("wav2vec2-ctc", "automatic-speech-recognition", []),
    ],
)
def test_detection_segmentation_and_speech_on_the_direct_runner(tiny, tmp_path, model, task, args):
    """Each pipeline task's rows equal plain transformers.pipeline on the same files."""
    from tether.bundles.probes import probe_audio, probe_images

    paths = []
    if task == "automatic-speech-recognition":
        import soundfile

        for i, clip in enumerate(probe_audio(2, 16000)):
            paths.append(str(tmp_path / f"clip-{i}.wav"))
            soundfile.write(paths[-1], clip, 16000)
    else:
        from PIL import Image

        for i, array in enumerate(probe_images(2)):
            paths.append(str(tmp_path / f"img-{i}.png"))
            Image.fromarray(array).save(paths[-1])
    source = tmp_path / "files.txt"
    source.write_text("\n".join(paths) + "\n")
    out = tmp_path / "out.jsonl"
    result = invoke(
        "beam", "run", str(tiny[model]), "--task", task, "-i", str(source), "-o", str(out), *args
    )
    assert result.exit_code == 0, result.output
    rows = {r["text"]: r["result"] for r in read_jsonl(out)}
    assert sorted(rows) == sorted(paths)
    call = {"threshold": 0.0} if task == "object-detection" else {}
    for path, got in rows.items():
        want = _plain_pipeline_output(task, tiny[model], path, **call)
        if task == "automatic-speech-recognition":
            assert got == want and got["text"]
        elif task == "object-detection":
            assert [(b["label"], b["box"]) for b in got] == [(b["label"], b["box"]) for b in want]
            assert len(got) == 5
        else:
            import base64
            import io

            from PIL import Image

            assert [s["label"] for s in got] == [s["label"] for s in want]
            for segment, reference in zip(got, want, strict=True):
                mask = Image.open(io.BytesIO(base64.b64decode(segment["mask"]["png"])))
                assert np.array_equal(np.asarray(mask), np.asarray(reference["mask"]))
