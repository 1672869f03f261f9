"""``compare(a, b)``: do two implementations of a model match, and where do they part ways?

Both sides run on the same tokenized probe texts (A's tokenizer). The report gives,
for the final outputs, max abs / max relative / mean abs differences and per-example
cosine similarity; for embedding models also the pooled embedding and how well the
nearest-neighbour rankings agree (what changes for users downstream). When both
sides are PyTorch modules, forward hooks capture every submodule's output and the
report names the first module whose difference exceeds the tolerance, with the
error by depth. The verdict follows a tolerance preset, so it can gate CI.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tether.errors import InputError, ParityError, ParityMismatchError
from tether.models.loading import LoadedModel
from tether.models.spec import ModelSpec
from tether.parity.candidates import (
    Candidate,
    apply_transform,
    from_callable,
    from_loaded,
    from_module,
    from_onnx,
    is_callable_target,
    load_spec,
    spec_for_path,
)
from tether.parity.diffs import DiffStats, TensorDiff
from tether.parity.hooks import block_names, capture, comparable_modules, parse_mapping
from tether.tolerances import DTYPE_PRESETS, TRANSFORM_PRESETS, Tolerance, get_tolerance

Side = str | ModelSpec | LoadedModel | Candidate | nn.Module
_SHOWN_UNMATCHED = 8


@dataclass
class TopK:
    """Agreement of each text's k nearest neighbours (cosine) in A's vs B's space."""

    k: int
    mean_overlap: float  # mean over texts of |topk_A & topk_B| / k
    min_overlap: float
    top1_agreement: float  # fraction of texts whose nearest neighbour is the same

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ParityReport:
    """Everything ``compare`` found. ``passed`` is the verdict; ``failures`` says why not."""

    a: str
    b: str
    kind_a: str
    kind_b: str
    tolerance: Tolerance
    texts: int
    outputs: list[TensorDiff]
    embedding: TensorDiff | None
    pooling: str | None
    topk: TopK | None
    modules: list[TensorDiff]  # every compared module, in A's execution order
    blocks: list[str]  # names of the modules that make the by-depth table
    first_divergence: TensorDiff | None
    only_in_a: list[str]
    only_in_b: list[str]
    failures: list[str]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def layers(self) -> list[TensorDiff]:
        """The by-depth rows: embeddings, each layer and its attention / MLP blocks."""
        wanted = set(self.blocks)
        return [m for m in self.modules if m.name in wanted]

    def check(self) -> ParityReport:
        """Raise ParityMismatchError unless the verdict passed; return self otherwise."""
        if self.passed:
            return self
        where = (
            f" First divergent module: {self.first_divergence.name}."
            if self.first_divergence
            else ""
        )
        raise ParityMismatchError(
            f"{self.b} does not match {self.a} within {self.tolerance.describe()}: "
            + "; ".join(self.failures)
            + "."
            + where
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "kind_a": self.kind_a,
            "kind_b": self.kind_b,
            "passed": self.passed,
            "failures": self.failures,
            "tolerance": self.tolerance.to_dict(),
            "texts": self.texts,
            "outputs": [o.to_dict() for o in self.outputs],
            "embedding": self.embedding.to_dict() if self.embedding else None,
            "pooling": self.pooling,
            "topk": self.topk.to_dict() if self.topk else None,
            "first_divergence": self.first_divergence.to_dict() if self.first_divergence else None,
            "layers": [m.to_dict() for m in self.layers],
            "modules": [m.to_dict() for m in self.modules],
            "only_in_a": self.only_in_a,
            "only_in_b": self.only_in_b,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }

    def format(self, all_modules: bool = False) -> str:
        """A readable report: final outputs, neighbours, error by depth, verdict."""
        from tether.parity.format import format_report

        return format_report(self, all_modules=all_modules)


# -- the comparison -------------------------------------------------------------------------


def compare(
    a: Side,
    b: Side | None = None,
    *,
    transform: str | None = None,
    tolerance: Tolerance | str | None = None,
    texts: Sequence[str] | None = None,
    batch_size: int = 16,
    top_k: int = 10,
    mapping: Sequence[str] | Mapping[str, str] | None = None,
    layers: bool = True,
    spec_defaults: Mapping[str, Any] | None = None,
    b_ignore_custom_code: bool = False,
) -> ParityReport:
    """Run A and B on the same texts and report how far B is from A.

    ``a`` and ``b`` are a ModelSpec, a LoadedModel, a torch module, or text: a model
    source or directory, a spec JSON file, a bundle directory, ``module:function``, or
    a ``.onnx`` file. ``b`` defaults to A loaded again (a copy of A under a
    transform); ``transform`` (fp16, bf16, int8, onnx) turns B into the candidate to
    check. ``spec_defaults`` fill specs built from
    text (e.g. ``{"trust_remote_code": True}``); ``b_ignore_custom_code`` loads B's
    built-in class without its custom code, on purpose, to measure what that changes.
    ``tolerance`` is a Tolerance or a preset name (``tether.tolerances.PRESETS``;
    ``get_tolerance(preset, atol=...)`` builds an overridden one); by default the
    transform's preset, else the one for B's dtype, else ``fp32``.
    """
    started = time.perf_counter()
    notes: list[str] = []
    texts = list(texts) if texts is not None else None
    if texts is None:
        from tether.bundles.probes import PROBE_TEXTS

        texts = list(PROBE_TEXTS)
    if not texts:
        raise InputError("No texts to compare on.", "Pass texts, or leave them out for probes.")
    if batch_size < 1 or top_k < 1:
        raise ParityError("batch_size and top_k must be >= 1.", "Pass positive numbers.")

    side_a = resolve_side(a, spec_defaults)
    side_b = resolve_side(
        a if b is None else b,
        spec_defaults,
        reference=side_a,
        ignore_custom_code=b_ignore_custom_code,
        # B = A: load it again (a real reload), unless a transform copies A anyway.
        reuse=side_a if b is None and (transform or not isinstance(a, (str, ModelSpec))) else None,
    )
    tokenizer = side_a.tokenizer or side_b.tokenizer
    if tokenizer is None:
        raise ParityError(
            f"Neither {side_a.label!r} nor {side_b.label!r} comes with a tokenizer.",
            "Make A a model directory, spec or bundle; its tokenizer feeds both sides.",
        )
    max_length = side_a.max_length or side_b.max_length
    batches = list(_batches(texts, tokenizer, batch_size, max_length))
    if transform:
        side_b = apply_transform(side_b, transform, sample=batches[0][1])
    tol = _tolerance(tolerance, transform, side_b, notes)

    layer_run = _LayerRun.start(side_a, side_b, parse_mapping(mapping), tol, notes, layers)
    finals: dict[tuple[str, str], DiffStats] = {}
    emb_a: list[torch.Tensor | None] = [None] * len(texts)
    emb_b: list[torch.Tensor | None] = [None] * len(texts)
    pooling: str = side_a.pooling or side_b.pooling or "mean"
    for index, batch in batches:
        mask = batch["attention_mask"]
        out_a, out_b = layer_run.run(batch, mask)
        pairs = _pair_outputs(out_a, out_b, notes)
        for key_a, key_b in pairs:
            stats = finals.setdefault((key_a, key_b), DiffStats(_pair_name(key_a, key_b), tol))
            stats.update(out_a[key_a], out_b[key_b], mask)
        ea, eb = _embeddings(out_a, out_b, mask, pooling)
        if ea is not None and eb is not None:
            for row, i in enumerate(index):
                emb_a[i], emb_b[i] = ea[row], eb[row]

    outputs = [s.result() for s in finals.values()]
    embedding, topk = None, None
    if all(e is not None for e in emb_a + emb_b):
        matrix_a = torch.stack(emb_a)  # type: ignore[arg-type]
        matrix_b = torch.stack(emb_b)  # type: ignore[arg-type]
        stats = DiffStats(f"embedding ({pooling} pooling)", tol)
        stats.update(matrix_a, matrix_b, None)
        embedding = stats.result()
        topk = neighbour_agreement(matrix_a, matrix_b, top_k)
    modules, blocks, only_a, only_b = layer_run.results()
    first = next((m for m in modules if not m.within(tol)), None)
    failures = _verdict(outputs, embedding, topk, tol)
    return ParityReport(
        a=side_a.label,
        b=side_b.label,
        kind_a=_kind(side_a),
        kind_b=_kind(side_b),
        tolerance=tol,
        texts=len(texts),
        outputs=outputs,
        embedding=embedding,
        pooling=pooling if embedding is not None else None,
        topk=topk,
        modules=modules,
        blocks=blocks,
        first_divergence=first,
        only_in_a=only_a,
        only_in_b=only_b,
        failures=failures,
        notes=list(dict.fromkeys(notes)),
        seconds=time.perf_counter() - started,
    )


def resolve_side(
    side: Side,
    spec_defaults: Mapping[str, Any] | None = None,
    *,
    reference: Candidate | None = None,
    ignore_custom_code: bool = False,
    reuse: Candidate | None = None,
) -> Candidate:
    """Turn whatever the user passed into a Candidate (loading models as needed)."""
    if reuse is not None:
        return reuse
    if isinstance(side, Candidate):
        return side
    if isinstance(side, LoadedModel):
        return from_loaded(side)
    if isinstance(side, nn.Module):
        return from_module(side, type(side).__name__, like=reference)
    if isinstance(side, ModelSpec):
        spec = side
    elif isinstance(side, (str, Path)):
        text = str(side)
        if text.endswith(".onnx"):
            out = from_onnx(text)
            if reference is not None:
                out.tokenizer, out.max_length = reference.tokenizer, reference.max_length
                out.pooling = reference.pooling
            return out
        if is_callable_target(text):
            return from_callable(text, reference)
        spec = spec_for_path(text, spec_defaults)
    else:
        raise ParityError(
            f"Cannot compare a {type(side).__name__}.",
            "Pass a ModelSpec, a LoadedModel, a torch module, a model directory or source, "
            "a spec JSON file, a bundle directory, module:function or a .onnx file.",
        )
    loaded = load_spec(spec, ignore_custom_code=ignore_custom_code)
    label = spec.model_id + (" (built-in class, custom code ignored)" if ignore_custom_code else "")
    return from_loaded(loaded, label)


# -- helpers ------------------------------------------------------------------------------


class _LayerRun:
    """Runs both sides on a batch, comparing hooked module outputs as B produces them."""

    def __init__(
        self,
        side_a: Candidate,
        side_b: Candidate,
        modules_a: dict[str, nn.Module],
        modules_b: dict[str, nn.Module],
        tol: Tolerance,
    ) -> None:
        self.side_a, self.side_b, self.tol = side_a, side_b, tol
        self.modules_a, self.modules_b = modules_a, modules_b
        self.shared = modules_a.keys() & modules_b.keys()
        self.order: dict[str, None] = {}  # names in A's execution order (outputs complete)
        self.fired_b: dict[str, None] = {}
        self.stats: dict[str, DiffStats] = {}

    @classmethod
    def start(
        cls,
        side_a: Candidate,
        side_b: Candidate,
        mapping: list[tuple[str, str]],
        tol: Tolerance,
        notes: list[str],
        wanted: bool,
    ) -> _LayerRun:
        if not wanted:
            return cls(side_a, side_b, {}, {}, tol)
        if side_a.module is None or side_b.module is None:
            other = side_b if side_a.module is not None else side_a
            notes.append(
                f"Layer by layer needs two PyTorch models; {other.label!r} is {other.kind}, "
                "so only final outputs are compared."
            )
            return cls(side_a, side_b, {}, {}, tol)
        run = cls(
            side_a,
            side_b,
            comparable_modules(side_a.module),
            comparable_modules(side_b.module, mapping),
            tol,
        )
        if not run.shared:
            notes.append(
                "A and B share no module names, so layers cannot be compared; map them with "
                "mapping=['A_PREFIX=B_PREFIX'] (--map A_PREFIX=B_PREFIX on the command line)."
            )
        return run

    def run(
        self, batch: Mapping[str, torch.Tensor], mask: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        captured: dict[str, torch.Tensor] = {}

        def on_a(name: str, tensor: torch.Tensor) -> None:
            self.order.setdefault(name, None)
            if name in self.shared:  # a copy: later ops may work in place
                captured[name] = tensor.to("cpu", torch.float32, copy=True)

        def on_b(name: str, tensor: torch.Tensor) -> None:
            self.fired_b.setdefault(name, None)
            reference = captured.pop(name, None)
            if reference is not None:
                stats = self.stats.get(name)
                if stats is None:
                    stats = self.stats[name] = DiffStats(name, self.tol, detailed=False)
                stats.update(reference, tensor, mask)

        with capture(self.modules_a, on_a) as reset:
            reset()
            out_a = self.side_a.forward(batch)
        with capture(self.modules_b, on_b) as reset:
            reset()
            out_b = self.side_b.forward(batch)
        return out_a, out_b

    def results(self) -> tuple[list[TensorDiff], list[str], list[str], list[str]]:
        modules = [
            self.stats[n].result(type(self.modules_a[n]).__name__, type(self.modules_b[n]).__name__)
            for n in self.order
            if n in self.stats
        ]
        blocks = block_names(self.modules_a) if self.modules_a else set()
        names = [m.name for m in modules if m.name in blocks]
        only_a = [n for n in self.order if n not in self.modules_b]
        only_b = [n for n in self.fired_b if n not in self.modules_a]
        return modules, names, only_a, only_b


def _batches(
    texts: Sequence[str], tokenizer: Any, batch_size: int, max_length: int | None
) -> Iterable[tuple[list[int], dict[str, torch.Tensor]]]:
    """Length-sorted batches (less padding), with each row's index into ``texts``."""
    if getattr(tokenizer, "pad_token", None) is None:
        tokenizer.pad_token = tokenizer.eos_token
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        encoded = tokenizer(
            [texts[i] for i in index],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        yield index, dict(encoded)


def _tolerance(
    tolerance: Tolerance | str | None,
    transform: str | None,
    side_b: Candidate,
    notes: list[str],
) -> Tolerance:
    if isinstance(tolerance, Tolerance):
        return tolerance
    preset = tolerance
    if preset is None and transform in TRANSFORM_PRESETS:
        preset = TRANSFORM_PRESETS[transform]
        notes.append(f"Tolerance preset {preset!r} chosen for transform {transform!r}.")
    elif preset is None and side_b.dtype in DTYPE_PRESETS:
        preset = DTYPE_PRESETS[side_b.dtype]
        notes.append(f"Tolerance preset {preset!r} chosen because B runs in {side_b.dtype}.")
    return get_tolerance(preset)


def _pair_outputs(
    out_a: Mapping[str, torch.Tensor], out_b: Mapping[str, torch.Tensor], notes: list[str]
) -> list[tuple[str, str]]:
    shared = [(k, k) for k in out_a if k in out_b]
    if shared:
        return shared
    if out_a and out_b:
        pairs = list(zip(out_a, out_b, strict=False))
        notes.append(
            "A and B name their outputs differently; paired by position: "
            + ", ".join(f"{x} ~ {y}" for x, y in pairs)
            + "."
        )
        return pairs
    raise ParityError(
        f"No outputs to compare: A gives {list(out_a) or 'none'}, B gives {list(out_b) or 'none'}.",
        "Both sides must return floating-point tensors (hidden states, logits, embeddings).",
    )


def _pair_name(key_a: str, key_b: str) -> str:
    return key_a if key_a == key_b else f"{key_a} ~ {key_b}"


def _embeddings(
    out_a: Mapping[str, torch.Tensor],
    out_b: Mapping[str, torch.Tensor],
    mask: torch.Tensor,
    pooling: str,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Sentence embeddings of both sides: the model's own, else pooled hidden states."""
    from tether.inference.tasks.embed import pool

    if "sentence_embedding" in out_a and "sentence_embedding" in out_b:
        return out_a["sentence_embedding"], out_b["sentence_embedding"]
    key = "last_hidden_state"
    if key in out_a and key in out_b and out_a[key].shape == out_b[key].shape:
        return pool(out_a[key], mask, pooling), pool(out_b[key], mask, pooling)
    return None, None


def neighbour_agreement(a: torch.Tensor, b: torch.Tensor, k: int = 10) -> TopK | None:
    """Overlap of each row's top-k cosine neighbours (itself excluded) in A vs B.

    ``k`` is capped at N - 1; returns None for fewer than 2 rows.
    """
    n = a.shape[0]
    if n < 2:
        return None
    k = min(k, n - 1)

    def neighbours(x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.normalize(x.double(), dim=1)
        sims = x @ x.T
        sims.fill_diagonal_(-float("inf"))
        return sims.topk(k, dim=1).indices

    top_a, top_b = neighbours(a), neighbours(b)
    overlap = torch.tensor(
        [len(set(ra.tolist()) & set(rb.tolist())) / k for ra, rb in zip(top_a, top_b, strict=True)]
    )
    return TopK(
        k=k,
        mean_overlap=float(overlap.mean()),
        min_overlap=float(overlap.min()),
        top1_agreement=float((top_a[:, 0] == top_b[:, 0]).double().mean()),
    )


def _verdict(
    outputs: list[TensorDiff], embedding: TensorDiff | None, topk: TopK | None, tol: Tolerance
) -> list[str]:
    """Why B fails ``tol`` (empty when it passes).

    Elementwise checks apply to every final output; the cosine check to the sentence
    embedding when there is one (that is what embedding users compare), else to every
    final output; the top-k check to the neighbour overlap.
    """
    failures: list[str] = []
    for out in outputs:
        if out.shape_mismatch:
            failures.append(f"{out.name}: shapes differ ({out.shape_mismatch})")
        elif tol.elementwise and out.mismatched:
            failures.append(
                f"{out.name}: {out.mismatched:,} of {out.compared:,} elements differ by more "
                f"than atol + rtol*|a| (max abs diff {out.max_abs:.3g})"
            )
    if tol.min_cosine is not None:
        for item in [embedding] if embedding else outputs:
            if not item.shape_mismatch and item.cos_min < tol.min_cosine:
                failures.append(
                    f"{item.name}: cosine similarity min {item.cos_min:.6f} < {tol.min_cosine}"
                )
    if tol.min_topk is not None:
        if topk is None:
            failures.append("top-k neighbour overlap was asked for but has no embeddings")
        elif topk.mean_overlap < tol.min_topk:
            failures.append(
                f"top-{topk.k} neighbour overlap {topk.mean_overlap:.4f} < {tol.min_topk}"
            )
    return failures


def _kind(side: Candidate) -> str:
    return side.kind + (f" ({side.transform})" if side.transform else "")


def read_texts(path: str | Path, limit: int | None = None) -> list[str]:
    """Texts from a file: ``.jsonl`` (a ``text`` field per line), fortune files (texts
    separated by lines holding ``%``), else one text per non-empty line."""
    import json

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Text file {str(path)!r} does not exist.", "Check the texts= path.")
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".jsonl":
        texts = []
        for number, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                texts.append(str(json.loads(line)["text"]))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(
                    f"{path}:{number} is not a JSON object with a 'text' field ({exc}).",
                    'Write one {"text": ...} object per line, or use a plain .txt file.',
                ) from exc
    elif any(line.strip() == "%" for line in raw.splitlines()):
        texts = [t.strip() for t in raw.split("\n%\n")]
    else:
        texts = raw.splitlines()
    texts = [t for t in texts if t.strip() and t.strip() != "%"]
    if not texts:
        raise InputError(f"{str(path)!r} holds no texts.", "Put one text per line.")
    return texts[:limit] if limit else texts
