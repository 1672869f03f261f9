"""`compare_models()` / `tether models compare`: one row per model, failures loud and
isolated, figures equal to scikit-learn's on the same vectors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from explore_data import fortunes_jsonl, write_jsonl
from tether import ModelSpec, Records, compare_models, load
from tether.cli.main import cli
from tether.inference.engine import Engine


def _vectors(path, texts):
    loaded = load(ModelSpec(str(path), model_class="AutoModel"))
    return np.stack([o.inference for o in Engine(loaded, "embed").predict(texts)])


def _loo_knn(vectors, labels, k):
    """Leave-one-out k-NN by brute-force cosine, written out independently."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    hits = 0
    for i in range(len(labels)):
        near = np.argsort(-sims[i], kind="stable")[:k]
        votes = {}
        for j in near:
            votes[labels[j]] = votes.get(labels[j], 0) + 1
        top = max(votes.values())
        hits += next(labels[j] for j in near if votes[labels[j]] == top) == labels[i]
    return hits / len(labels)


def test_a_failing_model_is_an_error_row_and_the_others_survive(tiny, tmp_path):
    data = tmp_path / "in.jsonl"
    rows = write_jsonl(data)
    models = [str(tiny["bert"]), str(tiny["custom"]), str(tiny["roberta"])]
    result = compare_models(models, Records(str(data), label_column="label"), seed=2)
    assert [r.model for r in result.rows] == models
    bert, custom, roberta = result.rows
    assert custom.error_type == "UntrustedCustomCodeError" and "trust_remote_code" in custom.error
    assert custom.dimension is None and custom.ari is None
    texts = [r["text"] for r in rows]
    labels = [r["label"] for r in rows]
    for row, name in ((bert, "bert"), (roberta, "roberta")):
        assert row.error is None and row.dimension == 32
        assert (row.records, row.embedded, row.errors) == (len(rows) + 3, len(rows), 3)
        vectors = _vectors(tiny[name], texts)
        found = KMeans(n_clusters=3, random_state=2, n_init="auto").fit_predict(vectors)
        assert row.ari == pytest.approx(adjusted_rand_score(labels, found))
        assert row.nmi == pytest.approx(normalized_mutual_info_score(labels, found))
        assert row.knn_accuracy == pytest.approx(_loo_knn(vectors, labels, 5))
    [pair] = result.overlap
    assert (pair["a"], pair["b"]) == (models[0], models[2]) and 0 <= pair["overlap"] <= 1
    assert result.common == len(rows)
    assert "FAILED" in result.format() and "UntrustedCustomCodeError" in result.format()


def test_a_model_agrees_fully_with_itself(tiny, tmp_path):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, bad=False)
    result = compare_models([str(tiny["bert"]), str(tiny["bert"])], str(data))
    assert result.overlap[0]["overlap"] == pytest.approx(1.0)
    assert result.rows[0].ari is None  # no labels, no label scores


def test_compare_command_prints_the_table_and_exits_2_on_a_failed_model(tiny, tmp_path):
    data = tmp_path / "in.jsonl"
    write_jsonl(data)
    no_tokenizer = tmp_path / "no-tokenizer"
    shutil.copytree(tiny["bert"], no_tokenizer)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (no_tokenizer / name).unlink(missing_ok=True)
    args = ["models", "compare", str(tiny["bert"]), str(no_tokenizer), str(tiny["distilbert-cls"])]
    result = CliRunner().invoke(cli, [*args, "-i", str(data), "--label-field", "label"])
    assert result.exit_code == 2, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["model", "dim", "records/s", "ARI"]
    assert any(str(no_tokenizer) in line and "FAILED" in line for line in lines)
    assert sum(line.startswith(str(tiny["bert"]) + " ") for line in lines) == 1
    assert "TokenizerError" in result.output
    as_json = CliRunner().invoke(cli, [*args, "-i", str(data), "--label-field", "label", "--json"])
    rows = json.loads(as_json.stdout)["rows"]
    assert [r["error_type"] for r in rows] == [None, "TokenizerError", None]
    assert rows[2]["dimension"] == 32 and rows[2]["nmi"] is not None


@pytest.mark.slow
def test_minilm_beats_an_untrained_model_on_real_topics(tiny, minilm_dir, tmp_path):
    data = tmp_path / "fortunes.jsonl"
    fortunes_jsonl(data, per_category=30)
    result = compare_models(["minilm", str(tiny["bert"])], Records(str(data), label_column="label"))
    minilm, bert = result.rows
    assert minilm.dimension == 384 and bert.dimension == 32
    assert minilm.knn_accuracy > bert.knn_accuracy + 0.2
    assert minilm.nmi > bert.nmi
