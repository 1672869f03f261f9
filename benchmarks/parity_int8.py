"""How far does tether's int8 (what `tether optimize --level int8` ships) move
all-MiniLM-L6-v2's embeddings?

Runs ``tether.parity.compare`` on thousands of real texts (Debian's ``fortunes`` package,
``apt-get install fortunes``) and prints the figures docs/parity.md quotes: per-text
cosine to the fp32 embedding (min and mean), top-k neighbour overlap, the verdict under
the optimize-int8 preset (``compare(transform="int8")`` builds the optimiser's own graph,
calibrated on these texts), and, as a control, fp32 against fp32 saved and reloaded from disk.

    python benchmarks/parity_int8.py --n 3000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FORTUNES = Path("/usr/share/games/fortunes")


def fortunes(n: int, max_chars: int, seed: int = 0) -> list[str]:
    """``n`` fortunes of 20..max_chars characters, whitespace folded, shuffled with ``seed``."""
    if not FORTUNES.is_dir():
        raise SystemExit("Install the corpus first: apt-get install -y fortunes")
    texts: list[str] = []
    for path in sorted(FORTUNES.iterdir()):
        if path.is_file() and not path.suffix:
            raw = path.read_text(encoding="utf-8", errors="replace")
            texts += [" ".join(t.split()) for t in raw.split("\n%\n")]
    texts = sorted({t for t in texts if 20 <= len(t) <= max_chars})
    random.Random(seed).shuffle(texts)
    return texts[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="number of texts")
    parser.add_argument("--max-chars", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--layers", action="store_true", help="also compare layer by layer")
    parser.add_argument("--reload-n", type=int, default=500, help="texts for the fp32 control")
    parser.add_argument("--json", type=Path, default=None, help="write the reports here")
    args = parser.parse_args()

    import torch

    from tether import ModelSpec, compare, load

    texts = fortunes(args.n, args.max_chars)
    print(
        f"{len(texts)} fortunes (20-{args.max_chars} chars); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, quantized engine {torch.backends.quantized.engine},"
        f" {platform.processor() or platform.machine()}"
    )
    started = time.perf_counter()
    int8 = compare(
        "minilm", transform="int8", texts=texts, batch_size=args.batch_size, layers=args.layers
    )
    int8_s = time.perf_counter() - started
    emb, topk = int8.embedding, int8.topk
    assert emb is not None and topk is not None
    print(f"\nall-MiniLM-L6-v2 fp32 vs tether int8 ({int8_s:.1f} s, build included)")
    print(f"  embedding cosine   min {emb.cos_min:.4f}   mean {emb.cos_mean:.4f}")
    print(
        f"  top-{topk.k} neighbours  mean overlap {topk.mean_overlap:.3f}   min "
        f"{topk.min_overlap:.3f}   same nearest neighbour {topk.top1_agreement:.1%}"
    )
    print(f"  verdict under {int8.tolerance.describe()}: {'PASS' if int8.passed else 'FAIL'}")
    if int8.first_divergence:
        print(f"  first divergent module: {int8.first_divergence.name}")

    loaded = load(ModelSpec("minilm", model_class="AutoModel"))
    with tempfile.TemporaryDirectory() as tmp:
        loaded.model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
        started = time.perf_counter()
        control = compare(loaded, tmp, texts=texts[: args.reload_n], batch_size=args.batch_size)
        control_s = time.perf_counter() - started
    print(f"\ncontrol: fp32 vs fp32 saved and reloaded, {control.texts} texts ({control_s:.1f} s)")
    print(
        f"  max abs diff {max(o.max_abs for o in control.outputs):g}   embedding cosine min "
        f"{control.embedding.cos_min:.6f}   verdict under {control.tolerance.name}: "
        f"{'PASS' if control.passed else 'FAIL'}"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"int8": int8.to_dict(), "fp32_reload": control.to_dict()}, indent=2)
        )


if __name__ == "__main__":
    main()
