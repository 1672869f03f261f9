"""Fast by default, still exact: the verified ``exact`` graph, built once per model and
machine, cached, and used from then on.

On first use of a model for a task on a machine, ``fast_backend`` builds the graph
``tether optimize --level exact`` builds (exported, fused), verifies it as ``optimize``
does (parity on the probe texts, the engine's batches, batch invariance, under the
``optimize-exact`` preset), and caches it. Later runs find it and run it. A graph that
fails verification is not used: the run falls back to PyTorch and says so, and the
refusal is cached too, so the build is not retried on every run.

Faster is measured, not assumed: after verification the build races the graph against
PyTorch through the engine on this machine and records both rates in the entry; ``auto``
runs the graph unless PyTorch was clearly faster there (``RACE_MARGIN``), and says which
and by how much. ``exact`` runs the graph whatever the race said.

A cache entry is keyed by everything the graph's numbers depend on: the model's digest
(sha256 of its config and weight files, and the spec fields that choose the module: class,
dtype, revision, custom code), the task, the CPU's instruction-set flags and architecture,
and the ONNX Runtime version. A new machine or runtime is a new key: the graph is built
and verified there afresh. An entry is trusted only when its record parses, names the
same key and the graph's sha256 matches; anything else is removed and rebuilt. Builds
of one key are serialised by a lock file, so processes starting together end with one
valid entry.

Where: ``$HF_HOME/tether/graphs`` when ``HF_HOME`` is set, else
``$XDG_CACHE_HOME/tether/graphs`` (``~/.cache/tether/graphs``), or ``cache_dir=``.

Only float32 models on the CPU, for the ``embed`` and ``classify`` tasks of
architectures the graph covers, take this path; on CUDA the default stays PyTorch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.bundles.optimized import has_cpu_feature, machine_record
from tether.errors import MissingExtraError, OptimizationError, SpecError, TetherError
from tether.models.inspection import sha256_cached, sha256_file
from tether.models.loading import LoadedModel

logger = logging.getLogger(__name__)

#: What ``backend=`` accepts: ``auto`` (the verified graph where it applies, else
#: PyTorch), ``exact`` (the verified graph, or an error saying why not), ``pytorch``.
BACKENDS = ("auto", "exact", "pytorch")
ENTRY_FORMAT = "tether-graph-cache/1"
GRAPH_FILE = "model.onnx"
#: How engines and run settings name the cached graph's backend.
CACHED_GRAPH_LABEL = "onnxruntime (exact, cached)"
RECORD_FILE = "entry.json"
#: Tasks whose forward pass the exact graph covers.
GRAPH_TASKS = ("embed", "classify")
#: ``auto`` keeps the graph unless it ran the build's race below this fraction of
#: PyTorch's rate: a near tie keeps the graph (timing noise is large on shared machines).
RACE_MARGIN = 0.9
#: Interleaved timed rounds of the race (best of each kept) and texts per round.
RACE_ROUNDS = 3
RACE_TEXTS = 64
#: CPU flags that make ``--level bf16`` worth suggesting (the same as optimize's check).
BF16_HINT_FEATURES = ("amx_bf16", "avx512_bf16")


@dataclass
class FastPath:
    """What runs a model's forward pass, and why."""

    backend: Any  # an OnnxBackend, or None: PyTorch
    choice: str  # "exact" or "pytorch"
    reason: str  # one line for the user: cached, built, refused, not eligible
    entry: Path | None = None  # the cache entry's directory
    built_seconds: float | None = None  # set when this call built the graph
    figures: dict[str, Any] = field(default_factory=dict)  # the verification's figures

    @property
    def name(self) -> str:
        return CACHED_GRAPH_LABEL if self.backend is not None else "pytorch"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The graph cache directory (see the module docstring for the order)."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "tether" / "graphs"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tether" / "graphs"


def entry_key(loaded: LoadedModel, task: str) -> dict[str, Any]:
    """Everything a cached graph's numbers depend on (its hash names the entry)."""
    root = Path(loaded.path)
    files = sorted({"config.json", *(w.path for w in loaded.report.weight_files)} & _listing(root))
    spec = loaded.spec
    machine = machine_record()
    return {
        "model": {name: sha256_cached(root / name) for name in files},
        "spec": {
            "model_class": spec.model_class,
            "dtype": spec.dtype,
            "revision": spec.revision,
            "trust_remote_code": spec.trust_remote_code,
        },
        "class": type(loaded.model).__name__,
        "task": task,
        "machine": {
            "arch": machine.arch,
            "cpu_features": list(machine.cpu_features),
            "runtime": machine.runtime,
            "runtime_version": machine.runtime_version,
        },
        "format": ENTRY_FORMAT,
    }


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def check_backend(backend: str) -> None:
    """Refuse a ``backend=`` that is not one of ``BACKENDS`` (callers check it before
    anything loads)."""
    if backend not in BACKENDS:
        raise SpecError(
            f"Unknown backend {backend!r}.",
            f"Use backend= one of: {', '.join(BACKENDS)}.",
            field="backend",
        )


def fast_backend(
    loaded: LoadedModel,
    task: str,
    backend: str = "auto",
    *,
    cache_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> FastPath:
    """The backend ``loaded`` should run ``task`` with under ``backend`` (``BACKENDS``).

    ``progress`` gets a line when a graph is about to be built (first use on a machine).

    Raises:
        SpecError: an unknown ``backend``.
        OptimizationError, MissingExtraError: ``backend="exact"`` where the graph does not
            apply (the message says why); ``auto`` runs PyTorch instead.
    """
    check_backend(backend)
    if backend == "pytorch":
        return FastPath(None, "pytorch", "PyTorch, as asked (backend='pytorch')")
    why_not = _ineligible(loaded, task)
    if why_not is not None:
        if backend == "exact":
            raise why_not
        return FastPath(None, "pytorch", f"PyTorch: {why_not.message}")
    key = entry_key(loaded, task)
    root = cache_root(cache_dir)
    entry = root / key_digest(key)
    root.mkdir(parents=True, exist_ok=True)
    with _build_lock(root / (entry.name + ".lock")):
        record = _trusted_record(entry, key)
        if record is None:
            if progress is not None:
                progress(
                    f"building the verified exact graph of {loaded.model_id} for {task} on "
                    f"this machine (first use; cached in {entry})"
                )
            started = time.perf_counter()
            record = _build(loaded, task, key, entry)
            seconds: float | None = time.perf_counter() - started
        else:
            seconds = None
    figures = record.get("figures", {})
    if record.get("refused"):
        reason = (
            "PyTorch: the exact graph failed verification on this machine ("
            + "; ".join(record["refused"])
            + ")"
        )
        if backend == "exact":
            raise OptimizationError(
                reason.removeprefix("PyTorch: ") + ".",
                "Use backend='pytorch', or report the model: its exported graph is not the model.",
                level="exact",
            )
        return FastPath(None, "pytorch", reason, entry, seconds, figures)
    from tether.inference.backends import OnnxBackend

    how = f"built and verified in {seconds:.1f} s" if seconds is not None else "cached"
    race = record.get("race") or {}
    graph_rate, torch_rate = race.get("graph_texts_per_s"), race.get("pytorch_texts_per_s")
    speed = (
        f"; {graph_rate / torch_rate:.2f}x PyTorch's speed here"
        if graph_rate and torch_rate
        else ""
    )
    if backend == "auto" and graph_rate and torch_rate and graph_rate < RACE_MARGIN * torch_rate:
        return FastPath(
            None,
            "pytorch",
            f"PyTorch: faster than the verified exact graph on this machine (measured when "
            f"the graph was built: {torch_rate:.0f} vs {graph_rate:.0f} texts/s; "
            f"backend='exact' runs the graph anyway)",
            entry,
            seconds,
            figures,
        )
    engine = figures.get("engine", {})
    reason = (
        f"verified exact graph ({how}; every text within cosine "
        f"{engine.get('min_cosine', 1.0):.6f} of PyTorch{speed})"
    )
    graph = OnnxBackend(entry / GRAPH_FILE, label=CACHED_GRAPH_LABEL)
    return FastPath(graph, "exact", reason, entry, seconds, figures)


def faster_levels_hint() -> str | None:
    """A line for users whose CPU would run an opt-in level faster (they change numbers)."""
    present = [f for f in BF16_HINT_FEATURES if has_cpu_feature(f)]
    if not present:
        return None
    return (
        f"this CPU has {' and '.join(present)}: `tether optimize SOURCE OUT --level bf16` "
        "may run faster (it changes numbers: every text within cosine 0.999)"
    )


# -- the cache entry ---------------------------------------------------------------------


def _ineligible(loaded: LoadedModel, task: str) -> OptimizationError | MissingExtraError | None:
    """Why the exact graph does not apply to ``loaded`` and ``task``, or None."""
    import importlib.util

    if loaded.optimized is not None:
        return OptimizationError(
            f"{loaded.model_id!r} is an optimised bundle: it runs its own verified graph.",
            "Leave backend= at 'auto' for optimised bundles.",
        )
    if task not in GRAPH_TASKS:
        return OptimizationError(
            f"the exact graph covers the {' and '.join(GRAPH_TASKS)} tasks, not {task!r}.",
            "Use backend='pytorch' for this task.",
        )
    if loaded.device.type != "cpu":
        return OptimizationError(
            f"{loaded.model_id!r} runs on {loaded.device.type}, where PyTorch is the default "
            "backend (the exact graph is verified for CPUs).",
            "Use device='cpu' to run the exact graph.",
        )
    if loaded.spec.dtype != "float32":
        return OptimizationError(
            f"{loaded.model_id!r} is loaded in {loaded.spec.dtype}; the exact graph is float32.",
            "Load the model with dtype='float32'.",
        )
    if importlib.util.find_spec("onnxruntime") is None:
        return MissingExtraError(
            "ONNX Runtime is not installed, so the exact graph cannot run.",
            "Install it with `pip install 'tether[onnx]'`, or use backend='pytorch'.",
            module="onnxruntime",
            extra="onnx",
        )
    from tether.inference.engine import Engine

    module = Engine(loaded, task).task.graph_module
    if module is None:
        return OptimizationError(
            f"the {task!r} task of {loaded.model_id!r} runs a path the graph does not cover "
            "(a sentence-transformers module stack, CLIP text features).",
            "Load the model with model_class='AutoModel'.",
        )
    if module is not loaded.model:  # e.g. embedding with a classifier checkpoint's base
        return OptimizationError(
            f"the {task!r} task runs part of {type(loaded.model).__name__} (its "
            f"{type(module).__name__}), and the graph is verified against the whole model.",
            "Load the model with the class the task runs (model_class='AutoModel' for embed).",
        )
    return None


def _trusted_record(entry: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The entry's record when it can be trusted; a broken entry is removed (None)."""
    record_path = entry / RECORD_FILE
    if not entry.exists():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        trusted = record.get("format") == ENTRY_FORMAT and record.get("key") == key
        if trusted and not record.get("refused"):
            graph = entry / GRAPH_FILE
            trusted = sha256_file(graph) == record["graph_sha256"]
    except (OSError, ValueError, KeyError, AttributeError):
        trusted = False
    if trusted:
        return dict(record)
    logger.warning("graph cache entry %s is broken or stale: rebuilding it", entry)
    shutil.rmtree(entry, ignore_errors=True)
    return None


def _build(loaded: LoadedModel, task: str, key: dict[str, Any], entry: Path) -> dict[str, Any]:
    """Build and verify the exact graph; publish the entry (graph or refusal) atomically."""
    from tether.inference.graphs.subjects import build_subject
    from tether.optimization.build import verify_subject

    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="tether-fastpath-") as tmp:
            record: dict[str, Any] = {
                "format": ENTRY_FORMAT,
                "key": key,
                "model_id": loaded.model_id,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            try:
                built = build_subject(loaded, task, "exact", None, Path(tmp))
                verdicts, failures = verify_subject(loaded, task, "exact", built, [])
            except TetherError as exc:  # an export or comparison this model does not allow
                built, verdicts, failures = None, {}, [f"{type(exc).__name__}: {exc.message}"]
            verdicts.pop("_vectors", None)
            record["figures"] = verdicts
            if built is not None:
                record["build"] = built.build
            if failures or built is None:
                record["refused"] = failures
            else:
                assert isinstance(built.subject, Path)
                shutil.copyfile(built.subject, staging / GRAPH_FILE)
                record["graph_sha256"] = sha256_file(staging / GRAPH_FILE)
                record["race"] = race(loaded, task, staging / GRAPH_FILE)
        (staging / RECORD_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
        os.replace(staging, entry)  # atomic: readers see no entry or a whole one
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return record


def race(loaded: LoadedModel, task: str, graph: Path) -> dict[str, Any]:
    """Texts/s of PyTorch and of ``graph`` through the engine on this machine: distinct
    variants of the probe texts (the engine runs exact repeats once), interleaved
    rounds, the best round of each."""
    from tether.bundles.probes import PROBE_TEXTS
    from tether.inference.backends import OnnxBackend
    from tether.inference.engine import Engine

    texts = [f"{PROBE_TEXTS[i % len(PROBE_TEXTS)]} ({i})" for i in range(RACE_TEXTS)]
    engines = {
        "pytorch": Engine(loaded, task),
        "graph": Engine(loaded, task, backend=OnnxBackend(graph)),
    }
    best = dict.fromkeys(engines, float("inf"))
    for engine in engines.values():  # warm-up: first-run allocations are not the rate
        engine.predict(texts[:8])
    for _ in range(RACE_ROUNDS):
        for name, engine in engines.items():
            start = time.perf_counter()
            engine.predict(texts)
            best[name] = min(best[name], time.perf_counter() - start)
    return {
        "texts": len(texts),
        "rounds": RACE_ROUNDS,
        "pytorch_texts_per_s": round(len(texts) / best["pytorch"], 1),
        "graph_texts_per_s": round(len(texts) / best["graph"], 1),
    }


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (POSIX ``flock``) for one key's check and build."""
    import fcntl

    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _listing(root: Path) -> set[str]:
    try:
        return {p.name for p in root.iterdir() if p.is_file()}
    except OSError:
        return set()
