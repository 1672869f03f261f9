"""Benchmark: tether ``embed`` vs ``SentenceTransformer.encode`` on the same texts.

Both embed the same real texts (Debian fortunes) with all-MiniLM-L6-v2, fp32, the
same max length (256) and the model's own pooling and normalisation, in one run.
Prints records/s of each (the engine on a list, and the `tether embed` runner over a
JSONL file), their ratios and the max abs difference of the vectors.

    python benchmarks/embed_throughput.py --limit 4000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=4000, help="number of texts")
    parser.add_argument("--st-batch-size", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=None, help="tether token budget")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs each; best is kept")
    args = parser.parse_args()

    import numpy as np
    import pyarrow.parquet as pq
    import torch
    from corpus import fortunes
    from sentence_transformers import SentenceTransformer

    from tether import ModelSpec, load
    from tether.inference.engine import Engine
    from tether.inference.runner import RunConfig, run_file

    texts = [t for t, _ in fortunes(args.limit)]
    chars = sum(map(len, texts))
    print(
        f"corpus: {len(texts)} fortunes, {chars / len(texts):.0f} chars on average; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )

    loaded = load(ModelSpec("minilm", model_class="AutoModel", max_length=256))
    engine = Engine(loaded, "embed", max_tokens=args.max_tokens)
    st = SentenceTransformer(str(loaded.path), device="cpu")
    st.max_seq_length = 256

    def run_tether() -> np.ndarray:
        return np.stack([o.inference for o in engine.predict(texts)])

    workdir = Path(tempfile.mkdtemp(prefix="tether-bench-"))
    source = workdir / "texts.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")

    def run_runner() -> np.ndarray:
        """The `tether embed` path: file in, Parquet out, chunked and overlapped."""
        out = workdir / "out.parquet"
        config = RunConfig(str(source), str(out), max_tokens=args.max_tokens)
        run_file(loaded, config, overwrite=True, progress=False)
        column = pq.read_table(out).column("embedding")
        return np.asarray(column.to_pylist(), dtype=np.float32)

    def run_st() -> np.ndarray:
        return st.encode(texts, batch_size=args.st_batch_size, convert_to_numpy=True)

    # warm up both on a slice
    engine.predict(texts[:64])
    st.encode(texts[:64], batch_size=args.st_batch_size)

    runs = {"sentence-transformers": run_st, "tether": run_tether, "tether-runner": run_runner}
    best = {name: float("inf") for name in runs}
    vectors = {}
    for _ in range(args.repeat):  # interleaved, best of N: the machine's noise is large
        for name, fn in runs.items():
            start = time.perf_counter()
            vectors[name] = fn()
            best[name] = min(best[name], time.perf_counter() - start)

    rate = {name: len(texts) / seconds for name, seconds in best.items()}
    diff = float(np.abs(vectors["tether"] - vectors["sentence-transformers"]).max())
    print(
        f"sentence-transformers encode (batch_size={args.st_batch_size}): "
        f"{rate['sentence-transformers']:8.1f} records/s"
    )
    print(
        f"tether embed (max_tokens={engine.max_tokens}):            {rate['tether']:8.1f} records/s"
    )
    ratio = rate["tether"] / rate["sentence-transformers"]
    print(f"ratio tether / sentence-transformers: {ratio:.3f}x")
    runner_ratio = rate["tether-runner"] / rate["sentence-transformers"]
    print(
        f"tether embed over a JSONL file to Parquet (runner): {rate['tether-runner']:8.1f} "
        f"records/s, ratio {runner_ratio:.3f}x"
    )
    diff_runner = float(np.abs(vectors["tether-runner"] - vectors["sentence-transformers"]).max())
    print(f"max abs diff of vectors: engine {diff:.2e}, runner {diff_runner:.2e}")
    shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
