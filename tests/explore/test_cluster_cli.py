"""`tether cluster` on tiny models, and on MiniLM over real texts."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from explore_data import fortunes_jsonl, write_jsonl
from tether import ModelSpec, load
from tether.cli.main import cli
from tether.inference.engine import Engine


def test_cluster_command_writes_rows_errors_and_summary(tiny, tmp_path):
    data = tmp_path / "in.jsonl"
    rows = write_jsonl(data)
    out = tmp_path / "out.parquet"
    args = ["cluster", str(tiny["bert"]), "-i", str(data), "-o", str(out), "--k", "3"]
    result = CliRunner().invoke(cli, [*args, "--label-field", "label", "--id-column", "id"])
    assert result.exit_code == 0, result.output
    assert f"records in: {len(rows) + 3} = clustered {len(rows)} + errors 3" in result.output
    assert "ARI" in result.output and "cluster 2:" in result.output
    assert pq.read_table(out).column("id").to_pylist() == [r["id"] for r in rows]
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2
    assert "--overwrite" in again.output


def test_cluster_command_json_and_bad_k(tiny, tmp_path):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, bad=False)
    out = tmp_path / "out.parquet"
    base = ["cluster", str(tiny["distilbert-cls"]), "-i", str(data), "-o", str(out)]
    result = CliRunner().invoke(cli, [*base, "--k", "auto", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["k"] in range(2, 11) and summary["silhouette_by_k"]
    bad = CliRunner().invoke(cli, [*base, "--k", "many", "--overwrite"])
    assert bad.exit_code == 2 and "neither a number nor 'auto'" in bad.output
    too_many = CliRunner().invoke(cli, [*base, "--k", "500", "--overwrite"])
    assert too_many.exit_code == 2 and "(command line: --k)" in too_many.output


def test_cluster_command_reuses_an_embed_output_without_a_model(tiny, tmp_path):
    data = tmp_path / "in.jsonl"
    write_jsonl(data)
    emb = tmp_path / "emb.npy"
    ran = CliRunner().invoke(cli, ["embed", str(tiny["bert"]), "-i", str(data), "-o", str(emb)])
    assert ran.exit_code == 0, ran.output
    result = CliRunner().invoke(
        cli,
        [
            "cluster",
            "-i",
            str(data),
            "--embeddings",
            str(emb),
            "--k",
            "2",
            "-o",
            str(tmp_path / "c.parquet"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "embeddings from" in result.output and "+ errors 2" in result.output


@pytest.mark.slow
def test_minilm_clusters_real_texts_by_topic(minilm_dir, tmp_path):
    data = tmp_path / "fortunes.jsonl"
    rows = fortunes_jsonl(data)
    out = tmp_path / "out.parquet"
    args = ["cluster", "minilm", "-i", str(data), "-o", str(out), "--label-field", "label"]
    result = CliRunner().invoke(cli, [*args, "--seed", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    loaded = load(ModelSpec("minilm", model_class="BertModel"))
    vectors = np.stack(
        [o.inference for o in Engine(loaded, "embed").predict([r["text"] for r in rows])]
    )
    expected = KMeans(n_clusters=4, random_state=1, n_init="auto").fit_predict(vectors)
    got = pq.read_table(out).column("cluster").to_pylist()
    assert got == expected.tolist()
    labels = [r["label"] for r in rows]
    assert summary["nmi"] == pytest.approx(normalized_mutual_info_score(labels, expected))
    assert summary["nmi"] > 0.5  # MiniLM separates Star Trek from Linux from food
    startrek = next(c for c in summary["clusters"] if c["top_label"] == "startrek")
    assert {"kirk", "spock", "stardate"} & set(startrek["terms"])


def test_help_of_the_new_commands_imports_no_heavy_extra():
    import subprocess
    import sys

    code = (
        "from tether.cli.main import main\n"
        "for args in (['cluster', '-h'], ['models', 'compare', '-h'], ['demo', '-h']):\n"
        "    try:\n        main(args)\n    except SystemExit as exc:\n        assert not exc.code\n"
        "import sys; print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(out.stdout.split())
    assert not modules & {"torch", "sklearn", "gradio", "matplotlib", "umap"}
