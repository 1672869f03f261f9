"""Benchmark: `tether run --task image-classification` vs plain ``transformers.pipeline``.

Both classify the same generated PNG files with the same ViT (a ViT-Tiny-sized config,
random weights, built offline: 224 px, patch 16, 12 layers, hidden 192) on the CPU,
in one run, interleaved, best of N. Prints images/s of plain ``pipeline()`` as a user
calls it (paths, default batch size), of ``pipeline()`` with the same batch size tether
uses, of tether's engine and of the ``tether run`` runner over a text file of paths;
the ratios; and whether the labels are identical.

    python benchmarks/media_throughput.py --images 1000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build_model(out: Path) -> Path:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    labels = [f"class-{i}" for i in range(10)]
    config = ViTConfig(
        image_size=224,
        patch_size=16,
        hidden_size=192,
        num_hidden_layers=12,
        num_attention_heads=3,
        intermediate_size=768,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    ViTForImageClassification(config).eval().save_pretrained(out)
    ViTImageProcessor(size={"height": 224, "width": 224}).save_pretrained(out)
    return out


def make_images(out: Path, count: int) -> list[str]:
    import numpy as np
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(0)
    paths = []
    for i in range(count):
        height, width = (int(x) for x in generator.integers(160, 320, 2))
        array = generator.integers(0, 255, (height, width, 3), dtype=np.uint8)
        path = out / f"image-{i:05d}.png"
        Image.fromarray(array).save(path)
        paths.append(str(path))
    return paths


def best_of(repeat: int, runs: dict[str, object]) -> dict[str, tuple[float, object]]:
    """Interleave the runs; keep each one's fastest time and its last result."""
    best: dict[str, tuple[float, object]] = {}
    for _ in range(repeat):
        for name, run in runs.items():
            started = time.perf_counter()
            result = run()  # type: ignore[operator]
            seconds = time.perf_counter() - started
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, result)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import torch
    from transformers import pipeline

    from tether import ModelSpec, load
    from tether.inference.engine import Engine
    from tether.inference.runner import RunConfig, run_file

    work = Path(tempfile.mkdtemp(prefix="tether-media-bench-"))
    try:
        model_dir = build_model(work / "vit")
        paths = make_images(work / "images", args.images)
        listing = work / "images.txt"
        listing.write_text("\n".join(paths) + "\n")
        print(
            f"{len(paths)} PNG images, torch {torch.__version__}, {torch.get_num_threads()} threads"
        )

        loaded = load(ModelSpec(str(model_dir), task="image-classification"))
        engine = Engine(loaded, "pipeline")
        rows = engine.max_rows
        plain = pipeline("image-classification", model=str(model_dir), device="cpu")

        def top(results: list) -> list[str]:
            return [r[0]["label"] for r in results]

        def run_runner() -> list[str]:
            out = work / "labels.jsonl"
            config = RunConfig(str(listing), str(out), task="pipeline")
            run_file(loaded, config, overwrite=True, progress=False)
            return [json.loads(json.loads(line)["result"])[0]["label"] for line in out.open()]

        runs = {
            "plain pipeline(paths)": lambda: top(list(plain(paths))),
            f"plain pipeline(paths, batch_size={rows})": lambda: top(
                list(plain(paths, batch_size=rows))
            ),
            "tether Engine (pipeline task)": lambda: top(
                [o.inference for o in engine.predict(paths)]
            ),
            "tether run (runner, text file of paths)": run_runner,
        }
        best = best_of(args.repeat, runs)
        reference_s, reference_labels = best["plain pipeline(paths)"]
        for name, (seconds, labels) in best.items():
            rate = len(paths) / seconds
            same = "identical labels" if labels == reference_labels else "LABELS DIFFER"
            print(f"  {name:<45} {rate:8.1f} images/s  {reference_s / seconds:5.2f}x  {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
