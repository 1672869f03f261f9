"""``compare(a, b)``: do two implementations of a model match, and where do they part ways?

Each side tokenizes the texts with its own tokenizer (a side without one, such as a
callable or ONNX file, uses A's). When both give the same tokens, the report gives,
for the final outputs, max abs / max relative / mean abs differences, per-example
cosine similarity, and the difference in float32 ulps; for embedding models also the
pooled embedding and, on at least MIN_TOPK_TEXTS texts, how well the
nearest-neighbour rankings agree. When the tokens differ, only what does not depend
on them is compared (pooled embeddings, per-text outputs of one shape) and the report
says so. When A is a PyTorch module, forward hooks capture every submodule's output;
B's are captured the same way, or, for a port in another framework, B returns named
intermediates (``tether.parity.names`` pairs them). The report names the first module
whose difference exceeds the tolerance, with the error by depth. The verdict follows
a tolerance preset, so it can gate CI.
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
from tether.judging import Judge, Verdict
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
from tether.parity.hooks import block_names, capture, comparable_modules, parse_mapping
from tether.parity.names import pair_intermediates
from tether.tolerances import DTYPE_PRESETS, TRANSFORM_PRESETS, Tolerance, get_tolerance

Side = str | ModelSpec | LoadedModel | Candidate | nn.Module
_SHOWN_UNMATCHED = 8
#: Fewest texts on which top-k neighbour overlap means something: with 12 texts and
#: k = 10, each text's neighbours are 10 of its 11 others, so overlap is ~1 for any pair.
MIN_TOPK_TEXTS = 200


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
    outputs: list[Verdict]
    embedding: Verdict | None
    pooling: str | None
    topk: TopK | None
    modules: list[Verdict]  # every compared module, in A's execution order
    blocks: list[str]  # names of the modules that make the by-depth table
    first_divergence: Verdict | None
    only_in_a: list[str]
    only_in_b: list[str]
    failures: list[str]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def layers(self) -> list[Verdict]:
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
    transform); ``transform`` (``tether.parity.candidates.TRANSFORMS``: ``exact``,
    ``bf16``, ``int8`` as ``tether optimize`` builds them on the probes and ``texts``, or
    a ``cast-fp16``/``cast-bf16`` weight cast) turns B into the candidate to check.
    ``spec_defaults`` fill specs
    built from text (e.g. ``{"trust_remote_code": True}``); ``b_ignore_custom_code`` loads B's
    built-in class without its custom code, on purpose, to measure what that changes.
    ``tolerance`` is a Tolerance or a preset name (``tether.tolerances.PRESETS``;
    ``get_tolerance(preset, atol=...)`` builds an overridden one); by default the
    transform's preset, else the one for B's dtype, else ``rerun``. Every figure and
    the verdict come from ``tether.judging``. ``mapping`` renames
    B's modules or a port's intermediates into A's names: ``["A_PREFIX=B_PREFIX"]``, a
    dict, or a YAML/JSON file path (``tether.parity.names``). Each side tokenizes with
    its own tokenizer; top-k overlap needs ``MIN_TOPK_TEXTS`` texts. Models that cannot
    be compared raise ParityError.
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
    tokenizer_a = side_a.tokenizer or side_b.tokenizer
    if tokenizer_a is None:
        raise ParityError(
            f"Neither {side_a.label!r} nor {side_b.label!r} comes with a tokenizer.",
            "Make A a model directory, spec or bundle; its tokenizer feeds both sides.",
        )
    tokenizer_b = side_b.tokenizer or tokenizer_a
    batches_a = list(_batches(texts, tokenizer_a, batch_size, side_a.max_length))
    batches_b = batches_a
    if tokenizer_b is not tokenizer_a:
        batches_b = list(_batches(texts, tokenizer_b, batch_size, side_b.max_length))
    same_tokens = batches_b is batches_a or all(
        _same_tokens(x, y) for (_, x), (_, y) in zip(batches_a, batches_b, strict=True)
    )
    if not same_tokens:
        notes.append(
            "A and B tokenize the texts differently (each side uses its own tokenizer), so "
            "only outputs that do not depend on the tokens are compared: pooled embeddings "
            "and per-text outputs of one shape; no per-token outputs, no layers."
        )
        layers = False
    elif batches_b is not batches_a:
        batches_b = batches_a  # same tokens: one set of batches feeds both sides
    for side, batches in ((side_a, batches_a), (side_b, batches_b)):
        _check_vocabulary(side, batches)
    if transform:
        side_b = apply_transform(side_b, transform, texts)
    tol = _tolerance(tolerance, transform, side_b, notes)
    if tol.min_topk is not None and len(texts) < MIN_TOPK_TEXTS:
        raise ParityError(
            f"A minimum top-k overlap needs at least {MIN_TOPK_TEXTS} texts; got {len(texts)}.",
            f"Pass texts= with {MIN_TOPK_TEXTS} or more, or leave out min_topk=.",
        )

    layer_run = _LayerRun.start(side_a, side_b, parse_mapping(mapping), tol, notes, layers)
    finals: dict[tuple[str, str], Judge] = {}
    emb_a: list[torch.Tensor | None] = [None] * len(texts)
    emb_b: list[torch.Tensor | None] = [None] * len(texts)
    pooling: str = side_a.pooling or side_b.pooling or "mean"
    for (index, batch), (_, batch_b) in zip(batches_a, batches_b, strict=True):
        mask, mask_b = batch["attention_mask"], batch_b["attention_mask"]
        out_a, out_b = layer_run.run(batch, batch_b, mask, index)
        if same_tokens:
            pairs = _pair_outputs(out_a, out_b, notes)
        else:
            pairs = _per_text_pairs(out_a, out_b, mask, mask_b)
            if any(k == "logits" for k, _ in pairs) and _labels(side_a) != _labels(side_b):
                pairs = [(k, v) for k, v in pairs if k != "logits"]
                notes.append("A and B have different label sets, so their logits are not compared.")
        for key_a, key_b in pairs:
            stats = finals.setdefault((key_a, key_b), Judge(_pair_name(key_a, key_b), tol))
            stats.update(out_a[key_a], out_b[key_b], mask, rows=index)
            if stats.shape_mismatch:
                raise ParityError(
                    f"{side_a.label!r} and {side_b.label!r} give {_pair_name(key_a, key_b)} "
                    f"of different shapes ({stats.shape_mismatch}), so they cannot be compared.",
                    "Compare two implementations of the same model (same hidden size and "
                    "vocabulary), or map a port's outputs to A's names.",
                )
        ea, eb = _embeddings(out_a, out_b, mask, pooling, mask_b)
        if ea is not None and eb is not None:
            for row, i in enumerate(index):
                emb_a[i], emb_b[i] = ea[row], eb[row]
    if not finals and all(e is None for e in emb_b):
        raise ParityError(
            f"Nothing to compare: {side_a.label!r} and {side_b.label!r} tokenize differently "
            "and share no pooled embedding or per-text output of one shape "
            f"(A gives {', '.join(out_a) or 'none'}; B gives {', '.join(out_b) or 'none'}).",
            "Compare two models with the same hidden size, or two implementations of one model.",
        )

    outputs = [s.verdict() for s in finals.values()]
    embedding, topk = None, None
    if all(e is not None for e in emb_a + emb_b):
        matrix_a = torch.stack(emb_a)  # type: ignore[arg-type]
        matrix_b = torch.stack(emb_b)  # type: ignore[arg-type]
        stats = Judge(f"embedding ({pooling} pooling)", tol)
        stats.update(matrix_a, matrix_b)
        if stats.shape_mismatch:
            raise ParityError(
                f"{side_a.label!r} and {side_b.label!r} give embeddings of different sizes "
                f"({stats.shape_mismatch}), so they cannot be compared.",
                "Compare two models with the same hidden size.",
            )
        embedding = stats.verdict()
        if len(texts) >= MIN_TOPK_TEXTS:
            topk = neighbour_agreement(matrix_a, matrix_b, top_k)
        else:
            notes.append(
                f"Top-k neighbour overlap is not reported for {len(texts)} texts: among so few, "
                f"any two models share most neighbours. It needs at least {MIN_TOPK_TEXTS} "
                "(texts=, --texts FILE)."
            )
    modules, blocks, only_a, only_b = layer_run.results()
    first = next((m for m in modules if not m.passed), None)
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
    """Runs both sides on a batch, comparing hooked module outputs as B produces them.

    B is a PyTorch module (hooked like A, names mapped), or a port that returns named
    intermediates (``ported``: paired with A's module names by ``pair_intermediates``).
    """

    def __init__(
        self,
        side_a: Candidate,
        side_b: Candidate,
        modules_a: dict[str, nn.Module],
        modules_b: dict[str, nn.Module],
        tol: Tolerance,
        mapping: list[tuple[str, str]] | None = None,
        ported: bool = False,
    ) -> None:
        self.side_a, self.side_b, self.tol = side_a, side_b, tol
        self.modules_a, self.modules_b = modules_a, modules_b
        self.shared = modules_a.keys() & modules_b.keys()
        self.mapping = mapping or []
        self.ported = ported
        self.paired: dict[str, str] = {}  # ported: A module name -> B intermediate name
        self.order: dict[str, None] = {}  # names in A's execution order (outputs complete)
        self.fired_b: dict[str, None] = {}
        self.stats: dict[str, Judge] = {}
        self.index: list[int] = []  # the current batch's rows among the texts

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
        if side_a.module is not None and side_b.module is None and side_b.forward_layers:
            return cls(
                side_a, side_b, comparable_modules(side_a.module), {}, tol, mapping, ported=True
            )
        if side_a.module is None or side_b.module is None:
            other = side_b if side_a.module is not None else side_a
            notes.append(
                f"Layer by layer needs A as a PyTorch model and B as one too, or as a function "
                f"that returns (outputs, intermediates); {other.label!r} is {other.kind}, "
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
                "mapping=['A_PREFIX=B_PREFIX'] (--rename A_PREFIX=B_PREFIX on the command line)."
            )
        return run

    def run(
        self,
        batch: Mapping[str, torch.Tensor],
        batch_b: Mapping[str, torch.Tensor],
        mask: torch.Tensor,
        index: list[int],
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Both sides on one batch (``index``: each row's position among the texts)."""
        self.index = index
        if self.ported:
            return self._run_ported(batch, mask)
        captured: dict[str, torch.Tensor] = {}

        def on_a(name: str, tensor: torch.Tensor) -> None:
            self.order.setdefault(name, None)
            if name in self.shared:  # a copy: later ops may work in place
                captured[name] = tensor.to("cpu", torch.float32, copy=True)

        def on_b(name: str, tensor: torch.Tensor) -> None:
            self.fired_b.setdefault(name, None)
            reference = captured.pop(name, None)
            if reference is not None:
                self._update(name, reference, tensor, mask)

        with capture(self.modules_a, on_a) as reset:
            reset()
            out_a = _run_side(self.side_a, batch)
        with capture(self.modules_b, on_b) as reset:
            reset()
            out_b = _run_side(self.side_b, batch_b)
        return out_a, out_b

    def _run_ported(
        self, batch: Mapping[str, torch.Tensor], mask: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """B first (its intermediates name what to capture), then A with hooks."""
        assert self.side_b.forward_layers is not None
        try:
            out_b, inter_b = self.side_b.forward_layers(batch)
        except ParityError:
            raise
        except Exception as exc:
            raise _forward_error(self.side_b, exc) from exc
        for name in inter_b:
            self.fired_b.setdefault(name, None)
        by_b = pair_intermediates(inter_b, self.modules_a, self.mapping)
        self.paired.update({a: b for b, a in by_b.items()})

        def on_a(name: str, tensor: torch.Tensor) -> None:
            self.order.setdefault(name, None)
            b_name = self.paired.get(name)
            if b_name is not None and b_name in inter_b:
                self._update(name, tensor.to("cpu", torch.float32), inter_b[b_name], mask)

        with capture(self.modules_a, on_a) as reset:
            reset()
            out_a = _run_side(self.side_a, batch)
        return out_a, out_b

    def _update(self, name: str, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> None:
        stats = self.stats.get(name)
        if stats is None:
            stats = self.stats[name] = Judge(name, self.tol, detailed=False)
        stats.update(a, b, mask, rows=self.index)

    def results(self) -> tuple[list[Verdict], list[str], list[str], list[str]]:
        def type_b(name: str) -> str:
            if self.ported:
                return self.paired[name]
            return type(self.modules_b[name]).__name__

        modules = [
            self.stats[n].verdict(type(self.modules_a[n]).__name__, type_b(n))
            for n in self.order
            if n in self.stats
        ]
        blocks = block_names(self.modules_a) if self.modules_a else set()
        names = [m.name for m in modules if m.name in blocks]
        if self.ported:
            paired_b = set(self.paired.values())
            only_a = [n for n in self.order if n not in self.paired]
            only_b = [n for n in self.fired_b if n not in paired_b]
        else:
            only_a = [n for n in self.order if n not in self.modules_b]
            only_b = [n for n in self.fired_b if n not in self.modules_a]
        return modules, names, only_a, only_b


def _run_side(side: Candidate, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``side.forward(batch)``; a model that cannot take the inputs is a ParityError."""
    try:
        return side.forward(batch)
    except ParityError:
        raise
    except Exception as exc:  # a model raises IndexError, RuntimeError, ValueError...
        raise _forward_error(side, exc) from exc


def _forward_error(side: Candidate, exc: Exception) -> ParityError:
    return ParityError(
        f"{side.label!r} failed on the tokenized texts: {type(exc).__name__}: {exc}",
        "Check that each side's tokenizer fits its model (vocabulary, inputs), and that a "
        "port returns arrays of the reference's shapes.",
    )


def _labels(side: Candidate) -> list[str] | None:
    """A classifier's labels in order (``config.id2label``), or None."""
    id2label = getattr(getattr(side.module, "config", None), "id2label", None)
    if not isinstance(id2label, Mapping):
        return None
    return [str(id2label[i]) for i in sorted(id2label, key=int)]


def _same_tokens(x: Mapping[str, torch.Tensor], y: Mapping[str, torch.Tensor]) -> bool:
    return all(
        k in y and x[k].shape == y[k].shape and torch.equal(x[k], y[k])
        for k in ("input_ids", "attention_mask")
        if k in x
    )


def _check_vocabulary(side: Candidate, batches: Sequence[tuple[list[int], Any]]) -> None:
    """A token id past the model's embedding table is a clear error, not an IndexError."""
    if side.module is None:
        return
    get = getattr(side.module, "get_input_embeddings", None)
    try:
        table = get() if callable(get) else None
    except (NotImplementedError, AttributeError):
        table = None
    size = getattr(table, "num_embeddings", None)
    if not isinstance(size, int):
        return
    largest = max(int(batch["input_ids"].max()) for _, batch in batches if "input_ids" in batch)
    if largest >= size:
        raise ParityError(
            f"The tokenizer feeding {side.label!r} gives token id {largest}, but the model's "
            f"vocabulary has {size} entries: its tokenizer does not fit the model.",
            "Give the side a model directory whose tokenizer matches it (tokenizer=).",
        )


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


def _per_text_pairs(
    out_a: Mapping[str, torch.Tensor],
    out_b: Mapping[str, torch.Tensor],
    mask_a: torch.Tensor,
    mask_b: torch.Tensor,
) -> list[tuple[str, str]]:
    """Outputs with the same name that do not run over tokens (pooler, logits of a head)."""

    def per_token(value: torch.Tensor, mask: torch.Tensor) -> bool:
        return value.dim() >= 2 and tuple(value.shape[:2]) == tuple(mask.shape)

    return [
        (k, k)
        for k in out_a
        if k in out_b
        and not per_token(out_a[k], mask_a)
        and not per_token(out_b[k], mask_b)
        and out_a[k].shape == out_b[k].shape
    ]


def _embeddings(
    out_a: Mapping[str, torch.Tensor],
    out_b: Mapping[str, torch.Tensor],
    mask: torch.Tensor,
    pooling: str,
    mask_b: torch.Tensor | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Sentence embeddings of both sides: the model's own, else pooled hidden states
    (each side's with its own attention mask)."""
    from tether.inference.tasks.embed import pool

    mask_b = mask if mask_b is None else mask_b
    if "sentence_embedding" in out_a and "sentence_embedding" in out_b:
        return out_a["sentence_embedding"], out_b["sentence_embedding"]
    key = "last_hidden_state"
    if key in out_a and key in out_b and out_a[key].dim() == out_b[key].dim() == 3:
        return pool(out_a[key], mask, pooling), pool(out_b[key], mask_b, pooling)
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
    outputs: list[Verdict], embedding: Verdict | None, topk: TopK | None, tol: Tolerance
) -> list[str]:
    """Why B fails ``tol`` (empty when it passes).

    Elementwise checks apply to every final output; the cosine check to the sentence
    embedding when there is one (that is what embedding users compare), else to every
    final output; the top-k check to the neighbour overlap.
    """
    failures = [f"{out.name}: {f}" for out in outputs for f in out.elementwise_failures]
    for item in [embedding] if embedding else outputs:
        failures += [f"{item.name}: {f}" for f in item.cosine_failures]
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
