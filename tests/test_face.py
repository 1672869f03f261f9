"""The Python face: ``tether.Model(...).encode(texts)``, its results and its refusals.

Real models throughout: the shipped all-MiniLM-L6-v2 for the README's program, tiny
config-built ones for the tasks; the engine, the fast path and the loaders are the real
ones underneath.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

import tether
from tether import (
    Embeddings,
    FailedRecord,
    FailedRecordsError,
    InputError,
    Model,
    Outputs,
    Records,
    SpecError,
    TaskError,
)

ROOT = Path(__file__).resolve().parents[1]
TEXTS = ["the quick brown fox", "", "embeddings turn text into vectors", 42, "short"]


@pytest.fixture(scope="module")
def bert(tiny, tmp_path_factory):
    return Model(tiny["bert"], cache_dir=tmp_path_factory.mktemp("graphs"), progress=False)


def _python_blocks(text: str) -> list[str]:
    section = text.split("In Python, one model", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_python_program_runs_and_prints_what_it_says(monkeypatch, tmp_path):
    """The README's blocks, run as a user would (from the repo root), print what their
    comments say: the first block is the five-line program of issue 22."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    blocks = _python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) == 2 and 'tether.Model("minilm")' in blocks[0]
    namespace: dict[str, object] = {}
    for block in blocks:
        lines = block.splitlines()
        expected = [line.split("#", 1)[1].strip() for line in lines if line.startswith("print(")]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
            exec(compile(block, "README.md", "exec"), namespace)
        got = printed.getvalue().splitlines()
        assert len(got) == len(expected)
        for line, want in zip(got, expected, strict=True):
            if want.startswith("verified exact graph ("):
                # the README shows a later run ("cached"); this one built the graph
                assert line.startswith("verified exact graph (") and "cosine 1.000000" in line
            else:
                assert line == want


def test_encode_keeps_every_record_accounted_for(bert):
    vectors = bert.encode(TEXTS)
    assert isinstance(vectors, Embeddings) and isinstance(vectors, np.ndarray)
    assert vectors.dtype == np.float32 and vectors.shape[0] == 3
    assert vectors.positions.tolist() == [0, 2, 4]
    assert vectors.records == 5 == len(vectors) + len(vectors.errors)
    assert [(e.position, e.kind) for e in vectors.errors] == [(1, "empty"), (3, "not-text")]
    assert vectors.errors[1].value == 42
    aligned = vectors.aligned()
    assert aligned.shape == (5, vectors.shape[1])
    assert np.isnan(aligned[[1, 3]]).all() and np.array_equal(aligned[[0, 2, 4]], vectors.array)
    # one text alone embeds to the same vector as within the batch
    alone = bert.encode("embeddings turn text into vectors")
    assert alone.shape == (1, vectors.shape[1])
    np.testing.assert_allclose(alone.array[0], vectors.array[1], atol=1e-5)


def test_errors_raise_names_the_first_failure_and_carries_them_all(bert):
    with pytest.raises(FailedRecordsError) as caught:
        bert.encode(TEXTS, errors="raise")
    error = caught.value
    assert error.records == 5
    assert [f.position for f in error.failures] == [1, 3]
    assert "position 1" in error.message and "empty" in error.message
    assert bert.encode(["fine", "also fine"], errors="raise").shape[0] == 2


def test_the_default_backend_is_the_verified_graph_and_pytorch_gives_the_same_vectors(
    tiny, tmp_path
):
    lines: list[str] = []
    fast = Model(tiny["bert"], cache_dir=tmp_path, progress=lines.append)
    vectors = fast.encode(TEXTS)
    assert fast.fast_path("embed").choice == "exact"
    assert len(lines) == 1 and "building the verified exact graph" in lines[0]
    assert fast.backend_reason.startswith("verified exact graph (built and verified in")
    plain = Model(tiny["bert"], backend="pytorch", cache_dir=tmp_path)
    reference = plain.encode(TEXTS)
    assert plain.fast_path("embed").choice == "pytorch"
    cosine = (vectors.array * reference.array).sum(1) / (
        np.linalg.norm(vectors.array, axis=1) * np.linalg.norm(reference.array, axis=1)
    )
    assert cosine.min() >= 0.9999
    again = Model(tiny["bert"], cache_dir=tmp_path, progress=lines.append)
    assert again.backend_reason.startswith("verified exact graph (cached")
    assert len(lines) == 1  # nothing built the second time


def test_records_input_carries_ids_labels_and_line_numbers(bert, tmp_path):
    path = tmp_path / "texts.jsonl"
    rows = [
        {"key": "a", "body": "the quick brown fox", "group": "animals"},
        {"key": "b", "body": "", "group": "nothing"},
        {"key": "c", "body": "vectors of numbers", "group": "maths"},
        {"key": "d", "body": "no group here"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n", encoding="utf-8")
    records = Records(path, text_column="body", id_column="key", label_column="group")
    vectors = bert.encode(records)
    assert vectors.ids == ["a", "c"] and vectors.labels == ["animals", "maths"]
    assert vectors.records == 5
    failed = {e.position: (e.kind, e.line, e.id) for e in vectors.errors}
    assert failed[1] == ("empty", 2, "b")
    assert failed[3][0] == "no-label" and failed[3][1] == 4
    assert failed[4][0] == "unreadable" and failed[4][1] == 5
    with pytest.raises(InputError, match="does not exist"):
        bert.encode(Records(tmp_path / "missing.jsonl"))


def test_stream_forms_yield_bounded_chunks_with_global_positions(bert):
    pulled = []

    def texts():
        for i in range(10):
            pulled.append(i)
            yield "" if i == 7 else f"text number {i}"

    chunks = bert.encode_stream(texts(), chunk_size=4)
    first = next(chunks)
    assert first.records == 4 and first.positions.tolist() == [0, 1, 2, 3]
    assert len(pulled) < 10  # the input is read as it goes, not all at once
    rest = list(chunks)
    assert [c.records for c in rest] == [4, 2]
    assert rest[0].positions.tolist() == [4, 5, 6] and rest[0].errors[0].position == 7
    whole = bert.encode(iter([f"text number {i}" for i in range(10)]), chunk_size=3)
    np.testing.assert_allclose(whole.array[:4], first.array, atol=1e-5)
    with pytest.raises(FailedRecordsError):
        list(bert.encode_stream(["ok", ""], errors="raise"))


def test_classify_fill_mask_and_pipeline_tasks(tiny):
    classifier = Model(tiny["distilbert-cls"], task="classify", backend="pytorch")
    labels = classifier.classify(["good great", "", "awful terrible"])
    assert isinstance(labels, Outputs) and labels.records == 3 and labels.positions == [0, 2]
    assert {labels[0]["label"], labels[1]["label"]} <= {"negative", "positive"}
    assert labels.errors[0].position == 1
    masked = Model(tiny["bert-mlm"], task="fill-mask")
    filled = masked.fill_mask(["the quick [MASK] fox"], top_k=3)
    assert masked.fast_path("fill-mask").choice == "pytorch"  # the graph covers embed/classify
    assert len(filled) == 1 and filled.records == 1
    pipe = Model(tiny["distilbert-cls"], task="text-classification")
    out = pipe.run("text-classification", ["good great", "awful terrible"])
    assert len(out) == 2 and out.task == "text-classification"
    with pytest.raises(TaskError, match="image-classification"):
        pipe.run("image-classification", ["x.png"])


def test_a_model_pickles_as_its_recipe_and_embeddings_keep_their_facts(bert, tiny, tmp_path):
    blob = pickle.dumps(bert)
    assert len(blob) < 4096  # the spec and options, never the weights
    again = pickle.loads(blob)
    assert again.spec == bert.spec and again.backend == bert.backend
    vectors = bert.encode(TEXTS)
    np.testing.assert_allclose(again.encode(TEXTS).array, vectors.array, atol=1e-6)
    copy = pickle.loads(pickle.dumps(vectors))
    assert isinstance(copy, Embeddings) and copy.positions.tolist() == [0, 2, 4]
    assert copy.errors == vectors.errors and copy.records == 5
    assert isinstance(copy.errors[0], FailedRecord)
    classifier = pickle.loads(pickle.dumps(Model(tiny["distilbert-cls"], task="classify")))
    assert classifier.task == "classify"


def test_arithmetic_and_slices_give_plain_arrays(bert):
    vectors = bert.encode(["one text", "another text"])
    for value in (vectors @ vectors.T, vectors[0], vectors * 2, np.mean(vectors, axis=0)):
        assert type(value) is np.ndarray
    assert type(vectors.copy()) is Embeddings and vectors.copy().records == 2


def test_bad_arguments_are_refused_before_anything_loads(tiny, bert):
    with pytest.raises(SpecError, match="Unknown backend 'onnx'") as caught:
        Model("/no/such/model", backend="onnx")
    assert caught.value.field == "backend"
    with pytest.raises(SpecError, match="max_tokens"):
        Model("/no/such/model", max_tokens=0)
    with pytest.raises(SpecError, match="errors must be"):
        bert.encode(["x"], errors="ignore")
    with pytest.raises(SpecError, match="Records"):
        bert.encode(Path("texts.txt"))
    with pytest.raises(SpecError, match="chunk_size"):
        bert.encode(["x"], chunk_size=0)
    with pytest.raises(SpecError, match="already loaded"):
        Model(bert.loaded, dtype="bfloat16")
    with pytest.raises(SpecError, match="embed\\(\\) got a Model"):
        tether.embed(["x"], bert, backend="pytorch")


def test_model_class_defaults_from_the_task(tiny):
    assert Model(tiny["distilbert-cls"], task="classify", backend="pytorch").spec.model_class == (
        "AutoModelForSequenceClassification"
    )
    assert Model(tiny["bert"], backend="pytorch").spec.model_class == "BertModel"  # its own
    assert "backend='pytorch'" in repr(Model(tiny["bert"], backend="pytorch"))
