"""`cluster()`: ids aligned with the input, bad records accounted for, figures that are
scikit-learn's own on the same vectors, and the same clusters for the same seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from explore_data import GROUPS, write_jsonl
from tether import InputError, ModelSpec, OutputError, Records, SpecError, cluster, load
from tether.explore.clustering import NOISE, cluster_vectors
from tether.explore.dataset import embed_dataset
from tether.inference.engine import Engine
from tether.inference.runner import RunConfig, run_file


@pytest.fixture(scope="module")
def bert(tiny):
    return load(ModelSpec(str(tiny["bert"]), model_class="AutoModel"))


def test_every_record_is_clustered_or_an_error_row_with_its_line(bert, tmp_path):
    data = tmp_path / "in.jsonl"
    rows = write_jsonl(data)
    result = cluster(
        bert,
        Records(str(data), id_column="id", label_column="label"),
        str(tmp_path / "out.parquet"),
        k=3,
    )
    assert (result.records, result.written, result.errors) == (len(rows) + 3, len(rows), 3)
    table = pq.read_table(result.output).to_pylist()
    assert [r["id"] for r in table] == [r["id"] for r in rows]  # input order, own ids
    assert [r["label"] for r in table] == [r["label"] for r in rows]
    errors = [json.loads(line) for line in Path(result.errors_path).read_text().splitlines()]
    assert [(e["line"], e["kind"]) for e in errors] == [
        (4, "unreadable"),
        (5, "empty"),
        (len(rows) + 3, "no-label"),
    ]
    assert set(errors[0]) == {"line", "id", "kind", "reason", "value"}  # `tether run`'s shape
    summary = json.loads(Path(result.summary_path).read_text())
    assert summary["records"] == summary["written"] + summary["errors"]
    assert sum(c["size"] for c in summary["clusters"]) == result.written


def test_clusters_and_scores_are_scikit_learns_own_on_the_same_vectors(bert, tmp_path):
    data = tmp_path / "in.jsonl"
    rows = write_jsonl(data, bad=False)
    result = cluster(
        bert, Records(str(data), label_column="label"), str(tmp_path / "out.parquet"), k=3, seed=7
    )
    vectors = np.stack(
        [o.inference for o in Engine(bert, "embed").predict([r["text"] for r in rows])]
    )
    expected = KMeans(n_clusters=3, random_state=7, n_init="auto").fit(vectors)
    got = pq.read_table(result.output)
    assert got.column("cluster").to_pylist() == expected.labels_.tolist()
    centroids = expected.cluster_centers_[expected.labels_]
    np.testing.assert_allclose(
        got.column("distance").to_numpy(), np.linalg.norm(vectors - centroids, axis=1), rtol=1e-5
    )
    labels = [r["label"] for r in rows]
    assert result.silhouette == pytest.approx(silhouette_score(vectors, expected.labels_), abs=1e-6)
    assert result.ari == pytest.approx(adjusted_rand_score(labels, expected.labels_))
    assert result.nmi == pytest.approx(normalized_mutual_info_score(labels, expected.labels_))
    majority = sum(
        max(
            sum(1 for lab, c in zip(labels, expected.labels_, strict=True) if c == cl and lab == x)
            for x in set(labels)
        )
        for cl in set(expected.labels_.tolist())
    )
    assert result.purity == pytest.approx(majority / len(labels))


def test_the_same_seed_gives_the_same_cluster_ids(bert, tmp_path):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, bad=False)
    runs = [
        pq.read_table(
            cluster(bert, str(data), str(tmp_path / f"out{i}.parquet"), k=4, seed=3).output
        )
        .column("cluster")
        .to_pylist()
        for i in range(2)
    ]
    assert runs[0] == runs[1]


def test_k_defaults_to_the_number_of_labels(bert, tmp_path):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, bad=False)
    result = cluster(bert, Records(str(data), label_column="label"), str(tmp_path / "o.parquet"))
    assert result.k == len(GROUPS)


def test_auto_k_keeps_the_best_silhouette(bert, tmp_path):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, bad=False)
    result = cluster(bert, str(data), str(tmp_path / "o.parquet"), k="auto")
    tried = result.silhouette_by_k
    assert sorted(tried) == list(range(2, 11))  # 2..min(12, records - 1)
    assert result.k == max(tried, key=lambda c: (tried[c], -c))
    assert result.silhouette == pytest.approx(tried[result.k])


def test_reusing_an_embed_output_gives_the_same_clusters(bert, tmp_path):
    data = tmp_path / "in.jsonl"
    write_jsonl(data)
    embedded = tmp_path / "emb.parquet"
    run_file(bert, RunConfig(Records(str(data), id_column="id"), str(embedded)), progress=False)
    records = Records(str(data), id_column="id")
    direct = cluster(bert, records, str(tmp_path / "a.parquet"), k=3)
    reused = cluster(None, records, str(tmp_path / "b.parquet"), k=3, embeddings=str(embedded))
    assert pq.read_table(reused.output).equals(pq.read_table(direct.output))
    # the embed run's own error rows are error rows here too; nothing is lost
    assert (reused.records, reused.errors) == (direct.records, direct.errors)


def test_embeddings_of_another_file_are_refused(bert, tmp_path):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, bad=False)
    other = tmp_path / "other.txt"
    other.write_text("\n".join(f"line {i}" for i in range(40)) + "\n")
    embedded = tmp_path / "emb.parquet"
    run_file(bert, RunConfig(str(other), str(embedded)), progress=False)
    with pytest.raises(InputError, match="another file"):
        cluster(None, str(data), str(tmp_path / "b.parquet"), embeddings=str(embedded))


def test_an_existing_output_needs_overwrite(bert, tmp_path):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, bad=False)
    out = tmp_path / "o.parquet"
    cluster(bert, str(data), str(out), k=2)
    with pytest.raises(OutputError, match="overwrite=True"):
        cluster(bert, str(data), str(out), k=2)
    cluster(bert, str(data), str(out), k=2, overwrite=True)


def test_a_label_column_on_plain_text_is_refused_before_embedding(tmp_path):
    data = tmp_path / "in.txt"
    data.write_text("a\nb\n")
    with pytest.raises(InputError, match=r"plain text.*label_column"):
        cluster("no-such-model-is-loaded", Records(str(data), label_column="label"))


def test_bad_k_and_method_are_spec_errors():
    vectors = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(SpecError, match="from 2 to"):
        cluster_vectors(vectors, 11)
    with pytest.raises(SpecError, match="Unknown clustering method"):
        cluster_vectors(vectors, 2, method="spectral")


def test_hdbscan_noise_has_no_distance():
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal(0, 0.1, (20, 3)), rng.normal(5, 0.1, (20, 3))])
    found = cluster_vectors(np.concatenate([blobs, [[50.0, -50.0, 50.0]]]), method="hdbscan")
    assert found.k == 2
    assert found.assignments[-1] == NOISE and np.isnan(found.distances[-1])
    assert not np.isnan(found.distances[:-1]).any()


def test_minibatch_above_the_size_limit(bert, tmp_path):
    vectors = np.random.default_rng(0).normal(size=(60, 4))
    assert cluster_vectors(vectors, 3, minibatch_above=50).method == "minibatch"
    assert cluster_vectors(vectors, 3, minibatch_above=60).method == "kmeans"


def test_dataset_counts_every_record(bert, tmp_path):
    data = tmp_path / "in.jsonl"
    rows = write_jsonl(data)
    dataset = embed_dataset(bert, Records(str(data), label_column="label"), chunk_size=2)
    assert dataset.balanced and len(dataset) == len(rows)
    assert dataset.vectors.shape == (len(rows), 32)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_labels_come_from_csv_and_parquet_columns_too(bert, tmp_path, fmt):
    import pyarrow as pa

    pairs = [(label, text) for label, texts in GROUPS.items() for text in texts]
    rows = [{"key": f"k{i}", "body": t, "group": lab} for i, (lab, t) in enumerate(pairs)]
    data = tmp_path / f"in.{fmt}"
    table = pa.Table.from_pylist(rows)
    if fmt == "csv":
        import pyarrow.csv

        pyarrow.csv.write_csv(table, data)
    else:
        pq.write_table(table, data)
    result = cluster(
        bert, Records(str(data), text_column="body", id_column="key", label_column="group"),
        str(tmp_path / "o.parquet"), k=3,
    )  # fmt: skip
    got = pq.read_table(result.output)
    assert got.column("id").to_pylist() == [r["key"] for r in rows]
    assert got.column("label").to_pylist() == [r["group"] for r in rows]
    assert result.errors == 0 and result.nmi is not None
