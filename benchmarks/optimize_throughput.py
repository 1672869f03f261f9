"""Benchmark: optimised bundles (``tether optimize``) against ``SentenceTransformer.encode``.

All embed the same real texts (Debian fortunes) with all-MiniLM-L6-v2, max length 256,
in one run, interleaved, best of N: sentence-transformers, the PyTorch engine, and the
engine over the ``exact``, ``int8`` and (on a CPU with bfloat16 dot products) ``bf16``
bundles, each on the runtime its build measured fastest here (named in its row). For each:
texts/s, the ratio to sentence-transformers, achieved GFLOP/s (from the real token
counts), its share of the peak of its dtype (a 4096x384 @ 384x1536 product measured
between the rounds in torch, ONNX Runtime and OpenVINO, best burst kept; the fastest
runtime's product in float32, bfloat16 or static int8 is the CPU's bound for that dtype),
the physical bound that peak gives (texts/s if every FLOP ran at it) and its ratio to
sentence-transformers, and the min/mean cosine of the vectors against the original
float32 model. Then one process with 2 threads against 2 processes with 1 thread each.

    python benchmarks/optimize_throughput.py --limit 3000 [--exact DIR] [--int8 DIR] [--bf16 DIR]

Bundles not given are built first with ``tether.optimize`` on the same texts.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

MAX_LENGTH = 256
#: The fp32 peak probe: the shape of MiniLM's feed-forward product on a 4096-token batch.
PEAK_SHAPE = (4096, 384, 1536)


def flops(lengths: list[int], config: Any) -> float:
    """Multiply-adds x 2 of a BERT encoder over texts of these token counts (no padding):
    per layer, Q/K/V/O and the feed-forward products, plus attention scores and mix."""
    h, ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_token = 2 * (4 * h * h + 2 * h * ff)
    return float(sum(layers * (n * per_token + 4 * n * n * h) for n in lengths))


def torch_peak(repeat: int = 20, dtype: str = "float32") -> float:
    """torch's GFLOP/s on the peak shape in ``dtype`` (bfloat16: oneDNN's bf16 kernels,
    what autocast runs), warmed up, into a preallocated output."""
    import torch

    m, k, n = PEAK_SHAPE
    kind = getattr(torch, dtype)
    a, b = torch.randn(m, k).to(kind), torch.randn(k, n).to(kind)
    out = torch.empty(m, n, dtype=kind)
    for _ in range(3):
        torch.mm(a, b, out=out)
    start = time.perf_counter()
    for _ in range(repeat):
        torch.mm(a, b, out=out)
    return 2 * m * k * n * repeat / (time.perf_counter() - start) / 1e9


def peak_graph(int8: bool = False) -> bytes:
    """The peak shape's product as an ONNX graph: float32, or (``int8``) quantised the way
    int8 bundles are (static scales: uint8 activations x int8 weights per channel,
    tether.inference.graphs.qdq)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = PEAK_SHAPE
    weight = numpy_helper.from_array(np.random.randn(k, n).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="peak")],
        "peak",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    data = onnx.ModelProto.SerializeToString(model)
    if int8:
        from tether.inference.graphs.qdq import quantize_static

        with tempfile.TemporaryDirectory() as tmp:
            source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            source.write_bytes(data)
            bounds = {"x": (np.full(k, -4.0), np.full(k, 4.0))}
            quantize_static(source, target, bounds, None)
            data = target.read_bytes()
    return data


def onnx_peak(threads: int, repeat: int = 20, int8: bool = False) -> float:
    """ONNX Runtime's rate on the peak shape's graph (``peak_graph``): the ceiling its
    float32 or int8 kernels give on this CPU, counted in the same multiply-adds."""
    import numpy as np
    import onnxruntime as ort

    m, k, n = PEAK_SHAPE
    data = peak_graph(int8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    x = np.random.randn(m, k).astype(np.float32)
    for _ in range(3):
        session.run(None, {"x": x})
    start = time.perf_counter()
    for _ in range(repeat):
        session.run(None, {"x": x})
    return 2 * m * k * n * repeat / (time.perf_counter() - start) / 1e9


def openvino_peak(threads: int, repeat: int = 20, int8: bool = False, precision: str = "f32"):
    """OpenVINO's rate on the same graph, at ``precision`` (bf16: its bfloat16 products);
    NaN where OpenVINO is not installed."""
    import importlib.util

    import numpy as np

    if importlib.util.find_spec("openvino") is None:
        return float("nan")
    import openvino as ov

    m, k, n = PEAK_SHAPE
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "peak.onnx"
        path.write_bytes(peak_graph(int8))
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": precision,
        }
        core = ov.Core()
        request = core.compile_model(
            core.read_model(str(path)), "CPU", config
        ).create_infer_request()
    x = np.random.randn(m, k).astype(np.float32)
    for _ in range(3):
        request.infer({"x": x})
    start = time.perf_counter()
    for _ in range(repeat):
        request.infer({"x": x})
    return 2 * m * k * n * repeat / (time.perf_counter() - start) / 1e9


def measure_peaks(threads: int, has_bf16: bool, peaks: dict[str, float] | None = None) -> dict:
    """Each runtime's and dtype's GFLOP/s on the peak shape, the best of this burst and
    ``peaks`` (earlier bursts): measured between the rounds, so that one burst that met
    another process's load does not set the bound."""
    now = {
        "torch": torch_peak(),
        "torch bf16": torch_peak(dtype="bfloat16") if has_bf16 else float("nan"),
        "onnxruntime": onnx_peak(threads),
        "onnxruntime int8": onnx_peak(threads, int8=True),
        "openvino": openvino_peak(threads),
        "openvino bf16": openvino_peak(threads, precision="bf16") if has_bf16 else float("nan"),
        "openvino int8": openvino_peak(threads, int8=True),
    }
    if peaks is None:
        return now
    return {key: max(value, peaks[key]) for key, value in now.items()}


def peak_of(name: str, peaks: dict[str, float]) -> str:
    """The peak that bounds a row: the fastest runtime's product in the row's dtype (the
    CPU's bound for that dtype, whichever runtime runs the row)."""
    dtype = "int8" if "int8" in name else "bf16" if "bf16" in name else "float32"
    keys = {
        "int8": ("onnxruntime int8", "openvino int8"),
        "bf16": ("torch bf16", "openvino bf16"),
        "float32": ("torch", "onnxruntime", "openvino"),
    }[dtype]
    finite = [k for k in keys if peaks[k] == peaks[k]]  # NaN: not installed or no bf16
    return max(finite, key=peaks.__getitem__)


def _worker(path: str | None, texts: list[str], repeat: int, barrier: Any, queue: Any) -> None:
    """One of several processes: 1 thread, its share of the texts, timed after a barrier."""
    import torch

    torch.set_num_threads(1)
    from tether import ModelSpec, load, load_bundle
    from tether.inference.engine import Engine

    loaded = (
        load_bundle(path)
        if path
        else load(ModelSpec("minilm", model_class="AutoModel", max_length=MAX_LENGTH))
    )
    engine = Engine(loaded, "embed")
    engine.predict(texts[:32])
    times = []
    for _ in range(repeat):
        barrier.wait()
        start = time.perf_counter()
        engine.predict(texts)
        times.append(time.perf_counter() - start)
    queue.put(times)


def processes(path: str | None, texts: list[str], count: int, repeat: int) -> float:
    """texts/s of ``count`` single-thread processes splitting ``texts`` (best of ``repeat``
    of the slowest process's time: the wall time of the whole set)."""
    context = mp.get_context("spawn")
    barrier = context.Barrier(count)
    queue = context.Queue()
    shares = [texts[i::count] for i in range(count)]
    workers = [
        context.Process(target=_worker, args=(path, share, repeat, barrier, queue))
        for share in shares
    ]
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    wall = [max(r[i] for r in results) for i in range(repeat)]
    return len(texts) / min(wall)


RUNTIME_NAMES = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO", "torch": "PyTorch autocast"}


def label(level: str, path: str) -> str:
    """A row's name: the level and what runs it (the runtime its build chose, and
    OpenVINO's precision: an int8 graph at bf16 runs bfloat16 around its int8 products)."""
    from tether.models.manifest import read_manifest

    evidence = read_manifest(path).optimized
    assert evidence is not None
    precision = (evidence["build"].get("runtime") or {}).get("precision")
    runtime = RUNTIME_NAMES[evidence["machine"]["runtime"]]
    return f"tether {level} ({runtime}{f' {precision}' if precision else ''})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=3000, help="number of texts")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs each; best is kept")
    parser.add_argument("--exact", default=None, help="an exact bundle (else built here)")
    parser.add_argument("--int8", default=None, help="an int8 bundle (else built here)")
    parser.add_argument("--bf16", default=None, help="a bf16 bundle (else built here)")
    parser.add_argument("--st-batch-size", type=int, default=32)
    parser.add_argument("--no-processes", action="store_true", help="skip 2 x 1 thread")
    parser.add_argument(
        "--levels",
        default=None,
        help="optimised levels to run (default: exact,int8, and bf16 where the CPU has it)",
    )
    args = parser.parse_args()

    import numpy as np
    import onnxruntime
    import torch
    from corpus import fortunes
    from sentence_transformers import SentenceTransformer

    from tether import ModelSpec, load, load_bundle, optimize
    from tether.bundles.optimized import cpu_info
    from tether.inference.engine import Engine
    from tether.optimization.build import BF16_FEATURES

    texts = [t for t, _ in fortunes(args.limit)]
    threads = torch.get_num_threads()
    cpu, features = cpu_info()
    print(
        f"corpus: {len(texts)} fortunes; torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}, {threads} threads; {cpu}; "
        f"vnni={'avx512_vnni' in features or 'avx_vnni' in features} "
        f"bf16={'avx512_bf16' in features}; load {os.getloadavg()[0]:.2f}"
    )
    loaded = load(ModelSpec("minilm", model_class="AutoModel", max_length=MAX_LENGTH))
    has_bf16 = any(f in features for f in BF16_FEATURES)
    default_levels = "exact,int8,bf16" if has_bf16 else "exact,int8"
    levels = (args.levels if args.levels is not None else default_levels).split(",")
    given = {"exact": args.exact, "int8": args.int8, "bf16": args.bf16}
    bundles = {k: v for k, v in given.items() if k in levels}
    workdir = Path(tempfile.mkdtemp(prefix="tether-optimize-bench-"))
    for level, path in bundles.items():
        if path is None:
            started = time.perf_counter()
            result = optimize(loaded, workdir / level, level=level, texts=texts)
            bundles[level] = str(result.path)
            print(f"built {level} bundle in {time.perf_counter() - started:.0f} s")
            print(result.summary())

    torch_engine = Engine(loaded, "embed")
    engines = {"tether engine (PyTorch)": torch_engine}
    for level, path in bundles.items():
        engines[label(level, path)] = Engine(load_bundle(path), "embed")
    st = SentenceTransformer(str(loaded.path), device="cpu")
    st.max_seq_length = MAX_LENGTH

    def engine_run(engine: Engine) -> Any:
        return lambda: np.stack([o.inference for o in engine.predict(texts)])

    runs = {"SentenceTransformer.encode": lambda: st.encode(texts, batch_size=args.st_batch_size)}
    runs.update({name: engine_run(engine) for name, engine in engines.items()})
    st.encode(texts[:64])  # warm up
    for engine in engines.values():
        engine.predict(texts[:64])

    best = {name: float("inf") for name in runs}
    vectors: dict[str, Any] = {}
    peaks = None
    for _ in range(args.repeat):  # interleaved: each round runs every contender once
        for name, run in runs.items():
            start = time.perf_counter()
            vectors[name] = run()
            best[name] = min(best[name], time.perf_counter() - start)
        peaks = measure_peaks(threads, has_bf16, peaks)
    assert peaks is not None

    lengths = [len(e.data[0]) for e in torch_engine.task.encode(texts)]
    work = flops(lengths, loaded.model.config)
    reference = vectors["tether engine (PyTorch)"]
    base = len(texts) / best["SentenceTransformer.encode"]
    print(
        f"{sum(lengths) / len(lengths):.0f} tokens per text on average; "
        f"{work / len(texts) / 1e9:.2f} GFLOP per text; matmul peaks "
        f"{PEAK_SHAPE[0]}x{PEAK_SHAPE[1]} @ {PEAK_SHAPE[1]}x{PEAK_SHAPE[2]} (best burst "
        f"between the rounds): torch float32 {peaks['torch']:.0f} GFLOP/s, bfloat16 "
        f"{peaks['torch bf16']:.0f}; onnxruntime float32 {peaks['onnxruntime']:.0f}, "
        f"int8 (static, u8 x s8) {peaks['onnxruntime int8']:.0f}; openvino float32 "
        f"{peaks['openvino']:.0f}, bfloat16 {peaks['openvino bf16']:.0f}, int8 "
        f"{peaks['openvino int8']:.0f}\n"
    )
    print(
        "| | texts/s | vs ST | GFLOP/s | of its dtype's peak | bound texts/s | bound vs ST "
        "| cosine min | cosine mean |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, seconds in best.items():
        rate = len(texts) / seconds
        gflops = work / seconds / 1e9
        peak = peaks[peak_of(name, peaks)]
        bound = peak * 1e9 / (work / len(texts))
        a = np.asarray(reference, dtype=np.float64)
        b = np.asarray(vectors[name], dtype=np.float64)
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        print(
            f"| {name} | {rate:.1f} | {rate / base:.2f}x | {gflops:.0f} | "
            f"{gflops / peak:.0%} ({peak_of(name, peaks)}) | {bound:.0f} | {bound / base:.2f}x | "
            f"{cos.min():.6f} | {cos.mean():.6f} |"
        )
    if not args.no_processes:
        print("\n| | 1 process x 2 threads | 2 processes x 1 thread |")
        print("| --- | --- | --- |")
        pairs = [("tether engine (PyTorch)", None)]
        pairs += [(label(level, path), path) for level, path in bundles.items()]
        for name, path in pairs:
            split = processes(path, texts, 2, args.repeat)
            print(f"| {name} | {len(texts) / best[name]:.1f} | {split:.1f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
