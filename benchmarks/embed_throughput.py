"""Benchmark: tether ``embed`` vs ``SentenceTransformer.encode`` on the same texts.

Both embed the same real texts (Debian fortunes) with all-MiniLM-L6-v2, fp32, the
same max length (256) and the model's own pooling and normalisation, in one run.
Prints records/s of each, their ratio and the max abs difference of the vectors.

    python benchmarks/embed_throughput.py --limit 4000
"""

from __future__ import annotations

import argparse
import os
import sys
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
    parser.add_argument("--repeat", type=int, default=2, help="timed runs each; best is kept")
    args = parser.parse_args()

    import numpy as np
    import torch
    from corpus import fortunes
    from sentence_transformers import SentenceTransformer

    from tether import ModelSpec, load
    from tether.batching import DEFAULT_MAX_TOKENS
    from tether.engine import Engine

    texts = [t for t, _ in fortunes(args.limit)]
    chars = sum(map(len, texts))
    print(
        f"corpus: {len(texts)} fortunes, {chars / len(texts):.0f} chars on average; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )

    loaded = load(ModelSpec("minilm", model_class="AutoModel", max_length=256))
    engine = Engine(loaded, "embed", max_tokens=args.max_tokens or DEFAULT_MAX_TOKENS)
    st = SentenceTransformer(str(loaded.path), device="cpu")
    st.max_seq_length = 256

    def run_tether() -> np.ndarray:
        return np.stack([o.inference for o in engine.predict(texts)])

    def run_st() -> np.ndarray:
        return st.encode(texts, batch_size=args.st_batch_size, convert_to_numpy=True)

    # warm up both on a slice
    engine.predict(texts[:64])
    st.encode(texts[:64], batch_size=args.st_batch_size)

    best = {"tether": float("inf"), "sentence-transformers": float("inf")}
    vectors = {}
    for _ in range(args.repeat):
        for name, fn in (("sentence-transformers", run_st), ("tether", run_tether)):
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
    print(f"max abs diff of vectors: {diff:.2e}")


if __name__ == "__main__":
    main()
