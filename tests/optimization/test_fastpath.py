"""The fast path: the verified exact graph built once per model and machine, cached,
trusted only when intact, rebuilt on a new machine or runtime, PyTorch when it fails."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import optional_import

optional_import("onnxruntime", "onnx")

from tether import ModelSpec, OptimizationError, SpecError, load  # noqa: E402
from tether.bundles.optimized import machine_record  # noqa: E402
from tether.inference.engine import Engine  # noqa: E402
from tether.inference.optimized import task_vectors  # noqa: E402
from tether.optimization import build as optimization_build  # noqa: E402
from tether.optimization import fastpath  # noqa: E402
from tether.optimization.fastpath import (  # noqa: E402
    GRAPH_FILE,
    RECORD_FILE,
    cache_root,
    entry_key,
    fast_backend,
    key_digest,
)
from tether.tolerances import Tolerance  # noqa: E402
from tiny_models import CORPUS  # noqa: E402

TEXTS = list(dict.fromkeys(CORPUS))


@pytest.fixture(scope="module")
def bert(tiny):
    return load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))


def _entries(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def test_first_use_builds_and_verifies_then_the_cache_is_used(bert, tmp_path):
    lines: list[str] = []
    first = fast_backend(bert, "embed", cache_dir=tmp_path, progress=lines.append)
    assert first.choice == "exact" and first.built_seconds is not None
    assert len(lines) == 1 and "building the verified exact graph" in lines[0]
    assert first.figures["engine"]["min_cosine"] >= 0.9999
    assert _entries(tmp_path) == [first.entry]
    again = fast_backend(bert, "embed", cache_dir=tmp_path, progress=lines.append)
    assert again.choice == "exact" and again.built_seconds is None and len(lines) == 1
    assert again.entry == first.entry and "cached" in again.reason
    # the graph the engine runs is the model, within the exact level
    fast = task_vectors(Engine(bert, "embed", backend=again.backend).predict(TEXTS))
    slow = task_vectors(Engine(bert, "embed").predict(TEXTS))
    cos = (fast * slow).sum(1) / np.linalg.norm(fast, axis=1) / np.linalg.norm(slow, axis=1)
    assert cos.min() >= 0.9999 and np.abs(fast - slow).max() <= 1e-4
    assert Engine(bert, "embed", backend=again.backend).backend_name == (
        "onnxruntime (exact, cached)"
    )


def test_the_build_races_the_graph_against_pytorch_and_auto_follows_the_measurement(bert, tmp_path):
    built = fast_backend(bert, "embed", cache_dir=tmp_path)
    record_path = built.entry / RECORD_FILE
    record = json.loads(record_path.read_text(encoding="utf-8"))
    race = record["race"]
    assert race["texts"] == fastpath.RACE_TEXTS and race["rounds"] == fastpath.RACE_ROUNDS
    assert race["pytorch_texts_per_s"] > 0 and race["graph_texts_per_s"] > 0
    ratio = race["graph_texts_per_s"] / race["pytorch_texts_per_s"]
    assert f"{ratio:.2f}x PyTorch's speed here" in built.reason
    # a machine where PyTorch won the race: auto runs PyTorch and says why, with figures
    record["race"] = {**race, "pytorch_texts_per_s": 100.0, "graph_texts_per_s": 80.0}
    record_path.write_text(json.dumps(record), encoding="utf-8")
    auto = fast_backend(bert, "embed", cache_dir=tmp_path)
    assert auto.choice == "pytorch" and auto.backend is None
    assert "faster than the verified exact graph" in auto.reason and "100 vs 80" in auto.reason
    assert fast_backend(bert, "embed", "exact", cache_dir=tmp_path).choice == "exact"
    # a near tie keeps the verified graph
    record["race"] = {**race, "pytorch_texts_per_s": 100.0, "graph_texts_per_s": 95.0}
    record_path.write_text(json.dumps(record), encoding="utf-8")
    assert fast_backend(bert, "embed", cache_dir=tmp_path).choice == "exact"


def test_a_changed_model_cpu_or_runtime_is_a_new_entry(bert, tiny, tmp_path, monkeypatch):
    base = entry_key(bert, "embed")
    # another task
    assert key_digest(entry_key(bert, "classify")) != key_digest(base)
    # other weights
    copy = tmp_path / "bert-copy"
    shutil.copytree(tiny["bert"], copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    changed = load(ModelSpec(str(copy), model_class="AutoModel"))
    assert entry_key(changed, "embed")["model"] != base["model"]
    # another CPU, another runtime
    here = machine_record()
    for other in (
        replace(here, cpu_features=(*here.cpu_features, "avx10_2")),
        replace(here, runtime_version="0.0.1"),
    ):
        monkeypatch.setattr(fastpath, "machine_record", lambda other=other: other)
        key = entry_key(bert, "embed")
        assert key_digest(key) != key_digest(base) and key["model"] == base["model"]
        built = fast_backend(bert, "embed", cache_dir=tmp_path / "cache")
        assert built.built_seconds is not None  # re-verified on the new machine
    assert len(_entries(tmp_path / "cache")) == 2


@pytest.mark.parametrize("damage", ["graph", "record", "key"])
def test_a_damaged_entry_is_rebuilt_not_trusted(bert, tmp_path, caplog, damage):
    entry = fast_backend(bert, "embed", cache_dir=tmp_path).entry
    if damage == "graph":
        graph = entry / GRAPH_FILE
        data = bytearray(graph.read_bytes())
        data[len(data) // 2] ^= 0x01
        graph.write_bytes(bytes(data))
    elif damage == "record":
        (entry / RECORD_FILE).write_text("{not json", encoding="utf-8")
    else:
        record = json.loads((entry / RECORD_FILE).read_text())
        record["key"]["task"] = "classify"
        (entry / RECORD_FILE).write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="tether.optimization.fastpath"):
        again = fast_backend(bert, "embed", cache_dir=tmp_path)
    assert again.built_seconds is not None and again.choice == "exact"
    assert "broken or stale: rebuilding" in caplog.text
    assert fastpath._trusted_record(entry, entry_key(bert, "embed")) is not None


_RACE = """
import sys, json
from tether import ModelSpec, load
from tether.optimization.fastpath import fast_backend
loaded = load(ModelSpec(sys.argv[1], model_class="AutoModel"))
fast = fast_backend(loaded, "embed", cache_dir=sys.argv[2])
print(json.dumps({"choice": fast.choice, "built": fast.built_seconds is not None}))
"""


def test_two_processes_building_at_once_end_with_one_valid_entry(bert, tiny, tmp_path):
    cache = tmp_path / "cache"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE, str(tiny["bert"]), str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    results = [json.loads(run.communicate(timeout=300)[0].strip().splitlines()[-1]) for run in runs]
    assert all(r["choice"] == "exact" for r in results)
    assert sorted(r["built"] for r in results) == [False, True]  # one built, one waited
    [entry] = _entries(cache)  # no staging directory left behind
    assert fastpath._trusted_record(entry, entry_key(bert, "embed")) is not None


def test_a_graph_failing_verification_falls_back_to_pytorch_and_is_remembered(
    bert, tmp_path, monkeypatch
):
    strict = Tolerance(atol=0.0, min_cosine=1.0, name="optimize-exact")
    monkeypatch.setitem(optimization_build.OPTIMIZE_LEVELS, "exact", strict)
    fast = fast_backend(bert, "embed", cache_dir=tmp_path)
    assert fast.backend is None and fast.choice == "pytorch"
    assert fast.reason.startswith("PyTorch: the exact graph failed verification on this machine")
    assert "elements differ by more than atol 0" in fast.reason
    again = fast_backend(bert, "embed", cache_dir=tmp_path)
    assert again.built_seconds is None and again.reason == fast.reason  # not rebuilt
    with pytest.raises(OptimizationError, match="failed verification"):
        fast_backend(bert, "embed", "exact", cache_dir=tmp_path)


def test_where_the_graph_does_not_apply_auto_runs_pytorch_and_exact_says_why(tiny, tmp_path):
    masked = load(ModelSpec(str(tiny["bert-mlm"]), model_class="AutoModelForMaskedLM"))
    auto = fast_backend(masked, "fill-mask", cache_dir=tmp_path)
    assert auto.backend is None and "covers the embed and classify tasks" in auto.reason
    with pytest.raises(OptimizationError, match="not 'fill-mask'"):
        fast_backend(masked, "fill-mask", "exact", cache_dir=tmp_path)
    half = load(ModelSpec(str(tiny["bert"]), model_class="AutoModel", dtype="bfloat16"))
    assert "is loaded in bfloat16" in fast_backend(half, "embed", cache_dir=tmp_path).reason
    pytorch = fast_backend(half, "embed", "pytorch", cache_dir=tmp_path)
    assert pytorch.backend is None and "as asked" in pytorch.reason
    with pytest.raises(SpecError, match="Unknown backend 'onnx'"):
        fast_backend(half, "embed", "onnx", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing was built


def test_the_cache_lives_under_hf_home_or_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert cache_root() == tmp_path / "hf" / "tether" / "graphs"
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "tether" / "graphs"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "tether" / "graphs"
    assert cache_root(tmp_path) == tmp_path


def test_tether_embed_uses_the_graph_by_default_and_pytorch_when_asked(tiny, tmp_path):
    from tether.cli.main import cli

    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n")
    vectors = {}
    for backend in ("auto", "auto", "pytorch"):
        out = tmp_path / f"{backend}.parquet"
        result = CliRunner().invoke(
            cli,
            [
                *("embed", str(tiny["bert"]), "-i", str(source), "-o", str(out)),
                *("--overwrite", "--backend", backend, "--no-progress"),
            ],
        )
        assert result.exit_code == 0, result.output
        lines = [line for line in result.output.splitlines() if line.startswith("backend: ")]
        assert len(lines) == 1  # said once
        if backend == "auto":
            assert lines[0].startswith("backend: verified exact graph")
        else:
            assert lines[0] == "backend: PyTorch, as asked (backend='pytorch')"
        vectors[backend] = np.stack(
            pq.read_table(out).column("embedding").to_numpy(zero_copy_only=False)
        )
    fast, slow = vectors["auto"], vectors["pytorch"]
    assert fast.shape == slow.shape == (len(TEXTS), slow.shape[1])
    assert np.abs(fast - slow).max() <= 1e-4
