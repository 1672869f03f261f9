"""Benchmark: `tether cluster` end to end vs the hand-written path, and `models compare`.

The hand-written path is what a user writes today: ``SentenceTransformer(...).encode``
then ``sklearn.cluster.KMeans`` with the same k and seed, then NMI against the labels.
tether's path is ``tether.cluster`` (load, read a JSONL file, embed, cluster, score,
summarise, write Parquet + errors + summary). Both start from the model directory and
the texts; runs are interleaved and the best of N is kept. Texts: Debian fortunes,
labels: their file names (``apt-get install fortunes``). Then ``compare_models`` over
all-MiniLM-L6-v2 and two tiny config-built models on the same file.

    python benchmarks/explore_throughput.py --limit 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # tiny_models: config-built models
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000, help="number of texts")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs each; best is kept")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from corpus import fortunes
    from sentence_transformers import SentenceTransformer
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    import tether
    from tether.models.sources import default_model_dir

    pairs = fortunes(args.limit)
    texts = [t for t, _ in pairs]
    labels = [label for _, label in pairs]
    k = len(set(labels))
    work = Path(tempfile.mkdtemp(prefix="tether-explore-bench-"))
    data = work / "fortunes.jsonl"
    data.write_text(
        "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in pairs), encoding="utf-8"
    )
    load = os.getloadavg()
    print(
        f"corpus: {len(texts)} fortunes, {k} labels (file names); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; load average {load[0]:.2f} {load[1]:.2f}"
    )
    model_dir = str(default_model_dir())

    def by_hand() -> float:
        st = SentenceTransformer(model_dir, device="cpu")
        vectors = st.encode(texts, batch_size=32, convert_to_numpy=True)
        found = KMeans(n_clusters=k, random_state=args.seed, n_init="auto").fit_predict(vectors)
        return float(normalized_mutual_info_score(labels, found))

    def with_tether() -> float:
        result = tether.cluster(
            "minilm", tether.Records(str(data), label_column="label"),
            str(work / "clusters.parquet"), seed=args.seed, overwrite=True,
        )  # fmt: skip
        assert result.k == k and result.balanced
        return float(result.nmi or 0.0)

    runs = {"SentenceTransformer.encode + KMeans": by_hand, "tether.cluster": with_tether}
    best = dict.fromkeys(runs, float("inf"))
    nmi = {}
    for _ in range(args.repeat):  # interleaved, best of N: the machine is shared and noisy
        for name, fn in runs.items():
            start = time.perf_counter()
            nmi[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)
    for name in runs:
        print(
            f"{name:38s} {best[name]:7.2f} s  {len(texts) / best[name]:7.1f} records/s  "
            f"NMI {nmi[name]:.4f}"
        )
    hand, ours = runs
    print(
        f"ratio (tether faster by): {best[hand] / best[ours]:.2f}x; "
        f"NMI difference {abs(nmi[hand] - nmi[ours]):.4f}"
    )

    import tiny_models

    bert = tiny_models.build_bert(work / "tiny-bert")
    roberta = tiny_models.build_roberta(work / "tiny-roberta")
    command = ["models", "compare", "minilm", bert.name, roberta.name]
    command += ["-i", data.name, "--label-field", "label"]
    print("\n$ tether " + " ".join(command))
    out = subprocess.run(
        [sys.executable, "-m", "tether", *command],
        capture_output=True, text=True, check=False, cwd=work,
        env={**os.environ, "PYTHONPATH": str(HERE.parent / "src")},
    )  # fmt: skip
    print(out.stdout, end="")
    if out.returncode:
        print(out.stderr)


if __name__ == "__main__":
    main()
