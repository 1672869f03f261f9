"""Which int8 levers keep all-MiniLM-L6-v2 within cosine 0.99 of float32 on every text?

Builds the fused graph ``tether optimize`` builds, then for each setting (smoothing
strength, signed or unsigned weights, reduce_range) quantises all 24 weight products
dynamically and embeds Debian fortunes through the engine two ways: in its padded
batches, and one text per run. Prints, per setting, the min and mean cosine against the
float32 engine, and how far a text alone moves from the same text batched. docs/optimize.md
quotes the table this prints.

    python benchmarks/int8_levers.py --limit 1000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SETTINGS = [  # (smoothing alpha, weight type, reduce_range)
    (None, "int8", False),
    (None, "int8", True),
    (None, "uint8", False),
    (None, "uint8", True),
    *[(alpha, wt, False) for alpha in (0.5, 0.7, 0.8, 0.9, 1.0) for wt in ("int8", "uint8")],
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1000, help="number of texts")
    parser.add_argument("--calibration", type=int, default=256, help="texts for smoothing")
    args = parser.parse_args()

    import numpy as np
    from corpus import fortunes

    from tether import Int8Scheme, ModelSpec, load
    from tether.inference.backends import OnnxBackend
    from tether.inference.engine import Engine
    from tether.inference.graphs.export import export_graph, fuse
    from tether.inference.graphs.int8 import quantize
    from tether.inference.graphs.smooth import activation_ranges, smooth
    from tether.inference.optimized import task_vectors

    texts = [t for t, _ in fortunes(args.limit)]
    loaded = load(ModelSpec("minilm", model_class="AutoModel", max_length=256))
    engine = Engine(loaded, "embed")
    task: Any = engine.task
    work = Path(tempfile.mkdtemp(prefix="tether-int8-levers-"))
    sample = dict(task.collate(task.encode(texts[:2])))
    export_graph(task.graph_module, sample, task.graph_output, work / "export.onnx")
    fuse(work / "export.onnx", work / "fused.onnx", loaded.model.config)
    reference = task_vectors(engine.predict(texts))
    encoded = task.encode(texts[: args.calibration])
    batches = [dict(task.collate(encoded[i : i + 16])) for i in range(0, len(encoded), 16)]
    ranges = activation_ranges(work / "fused.onnx", batches)

    def cosine(a: Any, b: Any) -> Any:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    def vectors(graph: Path) -> Any:
        run = Engine(loaded, "embed")
        run.task.attach(OnnxBackend(graph))
        return task_vectors(run.predict(texts))

    print(f"{len(texts)} fortunes; all 24 products quantised (dynamic, per channel)\n")
    print(
        "| smoothing | weights | batched: min / mean | one text per run: min / mean "
        "| alone vs batched, min |"
    )
    print("| --- | --- | --- | --- | --- |")
    for alpha, weight_type, reduce_range in SETTINGS:
        source = work / "fused.onnx"
        if alpha is not None:
            source = work / f"smoothed-{alpha}.onnx"
            if not source.exists():
                smooth(work / "fused.onnx", source, ranges, alpha)
        results = {}
        for per_text in (False, True):
            scheme = Int8Scheme(
                weight_type=weight_type, reduce_range=reduce_range, one_text_per_run=per_text
            )
            quantize(source, work / "int8.onnx", scheme, None)
            results[per_text] = vectors(work / "int8.onnx")
        batched, alone = cosine(reference, results[False]), cosine(reference, results[True])
        apart = cosine(results[False], results[True])
        name = {"int8": "S8", "uint8": "U8"}[weight_type] + (
            ", reduce_range" if reduce_range else ""
        )
        print(
            f"| {alpha if alpha is not None else 'none'} | {name} | {batched.min():.4f} / "
            f"{batched.mean():.4f} | {alone.min():.4f} / {alone.mean():.4f} | {apart.min():.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
