"""Benchmark: the same corpus through (a) tether's local runner, (b) tether in Beam's
DirectRunner and (c) Beam's MLTransform + SentenceTransformerEmbeddings, in one run.

All three embed the same real texts (Debian fortunes, written to one JSONL file) with
all-MiniLM-L6-v2 (fp32, max 256 tokens, the model's own pooling and normalisation),
read that file and write Parquet. Pipeline start (Beam start-up plus model load) is
measured on a one-record copy of the same job and reported separately; records/s of
(b) and (c) are over the time after it. (a) loads the model before the clock starts.

    python benchmarks/beam_throughput.py --limit 3000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
MAX_LENGTH = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=3000, help="number of texts")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs each; best is kept")
    parser.add_argument(
        "--beam-batch-size", type=int, default=None, help="tether Beam batch (fixed size)"
    )
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)

    import torch
    from corpus import fortunes

    work = Path(tempfile.mkdtemp(prefix="tether-beam-bench-"))
    texts = [t for t, _ in fortunes(args.limit)]
    corpus = write_corpus(work / "corpus.jsonl", texts)
    one = write_corpus(work / "one.jsonl", texts[:1])
    print(
        f"corpus: {len(texts)} fortunes, {sum(map(len, texts)) / len(texts):.0f} chars on "
        f"average; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} cores"
    )

    runs: dict[str, dict[str, float]] = {}
    outputs: dict[str, Path] = {}
    jobs: dict[str, Callable[[Path, Path], float]] = {
        "a": run_local,
        "b": lambda i, o: run_tether_beam(i, o, args.beam_batch_size),
        "c": run_mltransform,
    }
    for attempt in range(args.repeat):  # interleaved, so load from other work hits all three
        for name, fn in jobs.items():
            out = work / f"{name}-{attempt}.parquet"
            start = fn(one, work / f"{name}-start.parquet") if name != "a" else 0.0
            total = fn(corpus, out)
            if name not in runs or total - start < runs[name]["steady"]:
                runs[name] = {"start": start, "total": total, "steady": total - start}
            outputs[name] = out

    rate = {name: len(texts) / r["steady"] for name, r in runs.items()}
    labels = {
        "a": "(a) tether local runner (run_file)",
        "b": f"(b) tether in Beam DirectRunner (batch {args.beam_batch_size or 'default'})",
        "c": "(c) Beam MLTransform + SentenceTransformerEmbeddings",
    }
    for name, label in labels.items():
        r = runs[name]
        extra = (
            f"; pipeline start {r['start']:.1f} s, end to end {len(texts) / r['total']:.1f}"
            " records/s"
            if name != "a"
            else ""
        )
        print(f"{label:58s} {rate[name]:8.1f} records/s{extra}")
    print(f"ratio (b)/(a): {rate['b'] / rate['a']:.2f}x  (acceptance: >= 0.8)")
    print(f"ratio (b)/(c): {rate['b'] / rate['c']:.2f}x  (acceptance: >= 1.5)")
    vectors = {name: read_vectors(path) for name, path in outputs.items()}
    for pair in (("a", "b"), ("a", "c")):
        print(f"max abs diff {pair[0]} vs {pair[1]}: {max_diff(*(vectors[p] for p in pair)):.2e}")


def write_corpus(path: Path, texts: list[str]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for i, text in enumerate(texts):
            handle.write(json.dumps({"id": str(i), "text": text}) + "\n")
    return path


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_local(source: Path, out: Path) -> float:
    """(a): tether's local runner, model loaded before the clock starts."""
    from tether import ModelSpec, load

    loaded = load(ModelSpec("minilm", model_class="AutoModel", max_length=MAX_LENGTH))
    try:
        from tether.inference.runner import RunConfig, run_file
    except ImportError:  # the runner is not there: the engine over the same texts
        from tether.inference.engine import Engine

        texts = [json.loads(line)["text"] for line in source.read_text().splitlines()]
        engine = Engine(loaded, "embed")
        return timed(lambda: engine.predict(texts))
    from tether import Records

    records = Records(str(source), text_column="text", id_column="id")
    config = RunConfig(input=records, output=str(out), task="embed")
    return timed(lambda: run_file(loaded, config, overwrite=True, progress=False))


def run_tether_beam(source: Path, out: Path, batch_size: int | None) -> float:
    """(b): `tether beam run`'s pipeline on the DirectRunner (in-process)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from tether import ModelSpec, Records
    from tether.beam import TextEmbeddingHandler
    from tether.beam.pipeline import JobConfig, run

    spec = ModelSpec("minilm", model_class="AutoModel", max_length=MAX_LENGTH)
    sizes = {"min_batch_records": batch_size, "max_batch_records": batch_size} if batch_size else {}
    handler = TextEmbeddingHandler(spec, **sizes)
    job = JobConfig(
        records=Records(str(source), "jsonl", id_column="id"),
        output=str(out),
        output_format="parquet",
        errors=str(out) + ".errors.jsonl",
    )
    options = PipelineOptions(["--runner=DirectRunner"])
    return timed(lambda: run(handler, job, options))


def run_mltransform(source: Path, out: Path) -> float:
    """(c): Beam's own MLTransform + SentenceTransformerEmbeddings, default batching."""
    import apache_beam as beam
    import pyarrow as pa
    from apache_beam.ml.transforms.base import MLTransform
    from apache_beam.ml.transforms.embeddings.huggingface import SentenceTransformerEmbeddings

    from tether.models.sources import default_model_dir

    model = str(default_model_dir())
    schema = pa.schema([("id", pa.string()), ("embedding", pa.list_(pa.float32()))])

    def pipeline() -> None:
        with beam.Pipeline() as p:
            _ = (
                p
                | beam.io.ReadFromText(str(source))
                | beam.Map(json.loads)
                | MLTransform(write_artifact_location=tempfile.mkdtemp()).with_transform(
                    SentenceTransformerEmbeddings(
                        model_name=model, columns=["text"], max_seq_length=MAX_LENGTH
                    )
                )
                | beam.Map(lambda r: {"id": r["id"], "embedding": [float(x) for x in r["text"]]})
                | beam.io.WriteToParquet(str(out), schema, num_shards=1, shard_name_template="")
            )

    return timed(pipeline)


def read_vectors(path: Path) -> dict[str, Any]:
    import numpy as np
    import pyarrow.parquet as pq

    return {r["id"]: np.asarray(r["embedding"]) for r in pq.read_table(path).to_pylist()}


def max_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    if set(a) != set(b):
        return float("inf")
    return max(float(abs(a[k] - b[k]).max()) for k in a)


if __name__ == "__main__":
    main()
