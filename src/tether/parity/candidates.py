"""The two sides of a parity check, and built-in transforms that make a candidate.

A side is anything that maps tokenized inputs to named output tensors:

* a model (spec, source, directory, bundle) loaded through ``tether.load``;
* the same model loaded *without* its custom code, on purpose, to measure what the
  guard in ``load()`` prevents (``load_ignoring_custom_code``);
* a Python callable ``module:function`` (a port to another framework, a hand-made
  change): it is called once with a copy of the reference PyTorch model (or ``None``)
  and returns either a ``torch.nn.Module`` (compared layer by layer) or a function
  ``inputs -> outputs`` over numpy arrays. That function may also return named
  intermediate arrays, as ``(outputs, intermediates)`` (what Flax's
  ``apply(..., capture_intermediates=True)`` gives) or under an ``"intermediates"`` key;
  they are compared with A's module outputs layer by layer (``tether.parity.names``);
* an ONNX file run with ONNX Runtime (extra ``tether[onnx]``).

Transforms turn a PyTorch side into the candidate a user is about to ship, so the
change can be checked before shipping it: ``exact``, ``bf16`` and ``int8`` are built by
``tether optimize``'s own recipe (``tether.inference.graphs.subjects``), ``cast-fp16`` and
``cast-bf16`` cast the weights.
"""

from __future__ import annotations

import copy
import importlib
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from tether.errors import ParityError, require_extra
from tether.models.loading import LoadedModel
from tether.models.spec import ModelSpec
from tether.tolerances import TRANSFORM_PRESETS

if TYPE_CHECKING:
    from tether.inference.graphs.subjects import OpenVinoGraph

#: ``tether optimize``'s levels, then the weight casts (each judged by its preset).
TRANSFORMS = tuple(TRANSFORM_PRESETS)
#: A weight cast transform -> the dtype every weight is cast to.
CAST_TRANSFORMS = {"cast-fp16": "float16", "cast-bf16": "bfloat16"}
#: tether 0.1's transform names, for the refusal's hint only (they are not accepted).
RENAMED = {"onnx": "exact", "fp16": "cast-fp16"}
Outputs = dict[str, torch.Tensor]
_CALLABLE_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass
class Candidate:
    """One side of a comparison: tokenized inputs in, named float32 CPU tensors out."""

    label: str
    kind: str  # "pytorch" | "onnx" | "callable"
    forward: Callable[[Mapping[str, torch.Tensor]], Outputs]
    module: nn.Module | None = None  # set when hooks can see inside the model
    tokenizer: Any = None
    max_length: int | None = None
    pooling: str | None = None
    dtype: str | None = None
    transform: str | None = None
    #: set for callables that return intermediates: inputs -> (outputs, {name: tensor})
    forward_layers: Callable[[Mapping[str, torch.Tensor]], tuple[Outputs, Outputs]] | None = None
    #: the model behind a side loaded through tether (what the optimiser's transforms need)
    loaded: LoadedModel | None = None

    @property
    def hookable(self) -> bool:
        return self.module is not None


# -- reading outputs --------------------------------------------------------------------


def read_outputs(raw: Any) -> Outputs:
    """Name a model's outputs: ModelOutput/dict keys, ``output_<i>`` for tuples, else ``output``."""
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, (tuple, list)):
        items = [(f"output_{i}", v) for i, v in enumerate(raw)]
    else:
        items = [("output", raw)]
    out: Outputs = {}
    for name, value in items:
        if value is None:
            continue
        tensor = to_torch(value)
        if tensor is not None and tensor.is_floating_point():
            out[str(name)] = tensor.detach().to("cpu", torch.float32)
    return out


def to_torch(value: Any) -> torch.Tensor | None:
    """A torch view of an array, without a copy where the framework allows it.

    JAX arrays (and anything else with ``__dlpack__``) go through DLPack, NumPy arrays
    through ``torch.from_numpy``; both share memory. Returns None for non-arrays.
    """
    if isinstance(value, torch.Tensor):
        return value
    if hasattr(value, "__dlpack__") and not hasattr(value, "__array_interface__"):
        try:
            return torch.from_dlpack(value)
        except (TypeError, RuntimeError, BufferError):
            pass  # e.g. a dtype DLPack cannot carry: fall back to a copy
    try:
        import numpy as np

        array = np.asarray(value)
        if array.dtype == object:
            return None
        if not array.flags.writeable:  # torch warns on read-only memory; copy those
            array = array.copy()
        return torch.from_numpy(np.ascontiguousarray(array))
    except (TypeError, ValueError, RuntimeError):
        return None


def split_intermediates(raw: Any) -> tuple[Any, Any]:
    """``(outputs, intermediates)`` from what a callable returned (intermediates may be None).

    Accepted: ``(outputs, {...})`` as Flax's ``apply(..., capture_intermediates=True)``
    or ``mutable=["intermediates"]`` returns it, and ``{"intermediates": {...}, ...}``.
    """
    if isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[1], Mapping):
        return raw[0], raw[1]
    if isinstance(raw, Mapping) and isinstance(raw.get("intermediates"), Mapping):
        rest = {k: v for k, v in raw.items() if k != "intermediates"}
        return rest, raw["intermediates"]
    return raw, None


def flatten_intermediates(tree: Mapping[str, Any], prefix: str = "") -> Outputs:
    """``{"layers_0": {"mlp": {"__call__": (array,)}}}`` -> ``{"layers_0/mlp": tensor}``.

    Flax keeps a module's output under ``__call__`` and sown values as tuples (the first
    is taken); a top-level ``intermediates`` collection is unwrapped; the model's own
    output (empty name) is left to the final outputs.
    """
    if (
        prefix == ""
        and set(tree) == {"intermediates"}
        and isinstance(tree["intermediates"], Mapping)
    ):
        tree = tree["intermediates"]
    out: Outputs = {}
    for key, value in tree.items():
        name = prefix if key == "__call__" else f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten_intermediates(value, name))
            continue
        if isinstance(value, (tuple, list)):
            value = value[0] if value else None
        tensor = to_torch(value) if value is not None else None
        if name and tensor is not None and tensor.is_floating_point():
            out.setdefault(name, tensor.detach().to("cpu", torch.float32))
    return out


def _accepted_inputs(module: nn.Module) -> set[str]:
    from tether.bundles.probes import _accepted_inputs as accepted

    return accepted(module)


def _torch_forward(module: nn.Module, sentence_transformer: bool = False) -> Any:
    accepted = None if sentence_transformer else _accepted_inputs(module)

    def forward(inputs: Mapping[str, torch.Tensor]) -> Outputs:
        param = next(module.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        batch = {k: v.to(device) for k, v in inputs.items()}
        with torch.inference_mode():
            if sentence_transformer:
                raw = module(dict(batch))
                raw = {k: v for k, v in raw.items() if k == "sentence_embedding"}
            else:
                raw = module(**{k: v for k, v in batch.items() if k in (accepted or batch)})
        return read_outputs(raw)

    return forward


# -- building sides ---------------------------------------------------------------------


def from_loaded(loaded: LoadedModel, label: str | None = None) -> Candidate:
    """A side from a model loaded through tether's guards."""
    return Candidate(
        label=label or loaded.spec.model_id,
        kind="pytorch",
        forward=_torch_forward(loaded.model, loaded.spec.is_sentence_transformers),
        module=loaded.model,
        tokenizer=loaded.tokenizer,
        max_length=loaded.max_length,
        pooling=_pooling_for(loaded),
        dtype=loaded.spec.dtype,
        loaded=loaded,
    )


def from_module(module: nn.Module, label: str, like: Candidate | None = None) -> Candidate:
    """A side from a bare PyTorch module, taking tokenizer and pooling from ``like``."""
    module.eval()
    return Candidate(
        label=label,
        kind="pytorch",
        forward=_torch_forward(module),
        module=module,
        tokenizer=like.tokenizer if like else None,
        max_length=like.max_length if like else None,
        pooling=like.pooling if like else None,
    )


def load_spec(spec: ModelSpec, *, ignore_custom_code: bool = False) -> LoadedModel:
    """``tether.load(spec)``, or deliberately the built-in class when ``ignore_custom_code``."""
    if ignore_custom_code:
        return load_ignoring_custom_code(spec)
    from tether.models.loading import load

    return load(spec)


def load_ignoring_custom_code(spec: ModelSpec) -> LoadedModel:
    """Load the built-in transformers class even though the model ships its own code.

    This bypasses tether's custom-code guard on purpose. It exists for one job: to
    measure what a user gets when a custom-code model is reloaded without
    ``trust_remote_code`` (plain transformers silently builds the built-in class).
    Never use it to run a model.
    """
    from tether.models.inspection import inspect
    from tether.models.loading import load_tokenizer, resolve_device
    from tether.models.spec import resolve_model_class

    plain = spec.replace(trust_remote_code=False)
    report = inspect(plain.source, plain.revision, token=plain.token(), **plain.load_kwargs)
    model_cls = resolve_model_class(plain.model_class or "AutoModel")
    kwargs = {k: v for k, v in plain.load_kwargs.items() if k != "cache_dir"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = model_cls.from_pretrained(
            report.path, trust_remote_code=False, dtype=getattr(torch, plain.dtype), **kwargs
        )
    device = resolve_device(plain.device)
    model.to(device).eval()
    tokenizer = load_tokenizer(plain, Path(report.path), report)
    return LoadedModel(plain, model, tokenizer, Path(report.path), report, device)


def from_onnx(path: str | Path, label: str | None = None) -> Candidate:
    """A side that runs an ONNX file with ONNX Runtime on CPU."""
    path = Path(path)
    if not path.is_file():
        raise ParityError(f"ONNX file {str(path)!r} does not exist.", "Check the path.")
    session = _onnx_session(str(path))
    return _onnx_candidate(session, label or str(path))


def _onnx_session(model: str | bytes) -> Any:
    ort = require_extra("onnxruntime", "onnx")
    options = ort.SessionOptions()  # type: ignore[attr-defined]
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(  # type: ignore[attr-defined]
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ParityError(
            f"ONNX Runtime could not open the model: {type(exc).__name__}: {exc}",
            "Check that the file is a complete ONNX model (and its external data files "
            "sit next to it).",
        ) from exc


def _onnx_candidate(session: Any, label: str) -> Candidate:
    import numpy as np

    inputs = session.get_inputs()
    names = [o.name for o in session.get_outputs()]

    def forward(batch: Mapping[str, torch.Tensor]) -> Outputs:
        feed: dict[str, Any] = {}
        for spec in inputs:
            if spec.name in batch:
                value = batch[spec.name].cpu().numpy()
            elif spec.name == "token_type_ids" and "input_ids" in batch:
                value = np.zeros_like(batch["input_ids"].cpu().numpy())
            else:
                raise ParityError(
                    f"The ONNX model needs input {spec.name!r}, which the tokenizer does not "
                    f"produce (it gives {', '.join(batch)}).",
                    "Export the model with the tokenizer's inputs (input_ids, attention_mask).",
                )
            feed[spec.name] = value.astype(np.int64) if "int" in spec.type else value
        values = session.run(None, feed)
        return read_outputs(dict(zip(names, values, strict=True)))

    return Candidate(label=label, kind="onnx", forward=forward)


def from_callable(target: str, reference: Candidate | None) -> Candidate:
    """A side from ``module:function``; see the module docstring for the contract."""
    func = import_callable(target)
    ref_module = copy.deepcopy(reference.module) if reference and reference.module else None
    try:
        made = func(ref_module)
    except Exception as exc:
        raise ParityError(
            f"{target}(reference) raised {type(exc).__name__}: {exc}",
            "The function is called with a copy of A's PyTorch model (or None) and must "
            "return a torch.nn.Module or a function inputs -> outputs.",
        ) from exc
    if isinstance(made, nn.Module):
        side = from_module(made, target, like=reference)
        side.kind = "callable"
        return side
    if not callable(made):
        raise ParityError(
            f"{target}(reference) returned {type(made).__name__}, not a model or a function.",
            "Return a torch.nn.Module, or a function that takes a dict of numpy arrays "
            "(input_ids, attention_mask, ...) and returns an array or a dict of arrays.",
        )

    def forward_layers(batch: Mapping[str, torch.Tensor]) -> tuple[Outputs, Outputs]:
        raw, inner = split_intermediates(made({k: v.cpu().numpy() for k, v in batch.items()}))
        return read_outputs(raw), flatten_intermediates(inner) if inner is not None else {}

    def forward(batch: Mapping[str, torch.Tensor]) -> Outputs:
        return forward_layers(batch)[0]

    return Candidate(
        label=target,
        kind="callable",
        forward=forward,
        tokenizer=reference.tokenizer if reference else None,
        max_length=reference.max_length if reference else None,
        pooling=reference.pooling if reference else None,
        forward_layers=forward_layers,
    )


def import_callable(target: str) -> Callable[..., Any]:
    """Import ``package.module:function`` (the working directory is importable)."""
    module_name, _, attr = target.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ParityError(
            f"Cannot import {target!r}: {type(exc).__name__}: {exc}",
            "Write it as package.module:function, importable from the working directory "
            "or the installed packages.",
        ) from exc
    if not callable(obj):
        raise ParityError(f"{target!r} is not callable.", "Point at a function.")
    return obj


def is_callable_target(text: str) -> bool:
    return bool(_CALLABLE_RE.match(text)) and not Path(text).exists()


def spec_for_path(text: str, overrides: Mapping[str, Any] | None = None) -> ModelSpec:
    """A spec for a side given as text: a spec JSON file, a bundle or model dir, a source.

    A bundle (``tether.json`` manifest) is loaded with the spec its manifest holds, a
    directory carrying ``tether-spec.json`` with that spec; in both, trust and pickle
    permission come only from ``overrides`` (the user), never from the files.
    ``overrides`` (model_class, trust_remote_code, ... from the command line) win over
    any spec file; a bare source defaults to ``AutoModel``.
    """
    from tether.constants import SPEC_FILENAME
    from tether.models.manifest import USER_DECISIONS

    path = Path(text)
    if path.is_dir() and _is_bundle(path):
        from tether.models.manifest import bundle_spec

        return bundle_spec(path, **dict(overrides or {}))
    data: dict[str, Any] = {"source": text, "model_class": "AutoModel"}
    if path.is_file() and path.suffix == ".json":
        data = ModelSpec.load_file(path).to_dict()
    elif path.is_dir() and (path / SPEC_FILENAME).is_file():
        # A spec shipped inside a model directory is the model's file, not the user's:
        # it gives the recipe, never trust (custom code, pickle) or where tokens live.
        data = ModelSpec.load_file(path / SPEC_FILENAME).to_dict()
        data.update(source=str(path), **USER_DECISIONS)
    data.update(overrides or {})
    if data.get("task") and data.get("model_class") and not (overrides or {}).get("model_class"):
        data["model_class"] = None
    return ModelSpec.from_dict(data)


def _is_bundle(path: Path) -> bool:
    try:
        from tether.models.manifest import is_bundle
    except ImportError:  # pragma: no cover - bundles are a separate feature
        return False
    return bool(is_bundle(path))


# -- transforms -------------------------------------------------------------------------


def apply_transform(side: Candidate, name: str, texts: Sequence[str] | None = None) -> Candidate:
    """A new candidate made of ``side``'s model; ``side`` is untouched.

    ``exact``, ``bf16`` and ``int8`` are ``tether optimize``'s levels, built by the
    optimiser's own recipe (``build_subject``: the same export, fusion, smoothing, int8
    sweep calibrated on the probes and ``texts``, and autocast), so the comparison
    predicts what ``tether optimize`` would verify. ``cast-fp16`` and ``cast-bf16`` cast
    every weight (what ``dtype=`` loads).
    """
    if name not in TRANSFORMS:
        renamed = f" Transform {name!r} is now {RENAMED[name]!r}." if name in RENAMED else ""
        raise ParityError(
            f"Unknown transform {name!r}.{renamed}",
            f"Use transform= one of: {', '.join(TRANSFORMS)}.",
        )
    if side.module is None:
        raise ParityError(
            f"Transform {name!r} needs a PyTorch model, but {side.label!r} is {side.kind}.",
            "Apply transforms to a model directory, spec or bundle.",
        )
    label = f"{side.label} + {name}"
    if name in CAST_TRANSFORMS:
        module = copy.deepcopy(side.module).to(getattr(torch, CAST_TRANSFORMS[name]))
        out = from_module(module, label, like=side)
        out.dtype = CAST_TRANSFORMS[name]
    else:
        if side.loaded is None:
            raise ParityError(
                f"Transform {name!r} builds what `tether optimize` builds, which needs a model "
                f"loaded through tether; {side.label!r} is a bare module.",
                "Give A as a model directory, spec or bundle.",
            )
        out = optimised_candidate(side.loaded, name, texts, label)
        out.tokenizer, out.max_length, out.pooling = side.tokenizer, side.max_length, side.pooling
    out.transform = name
    return out


def optimised_candidate(
    loaded: LoadedModel, level: str, texts: Sequence[str] | None, label: str
) -> Candidate:
    """The candidate ``tether optimize --level LEVEL`` would verify, built on the probes
    and ``texts`` for the model's task (``classify`` for a sequence-classification head,
    else ``embed``)."""
    from tether.inference.graphs.subjects import build_subject

    task = (
        "classify" if type(loaded.model).__name__.endswith("ForSequenceClassification") else "embed"
    )
    with tempfile.TemporaryDirectory(prefix="tether-compare-") as tmp:
        built = build_subject(loaded, task, level, texts, Path(tmp))
        # a graph's session is in memory once open: the directory may go
        return subject_candidate(loaded, built.subject, label)


def subject_candidate(loaded: LoadedModel, subject: Any, label: str) -> Candidate:
    """A side that runs an optimisation subject: a graph (ONNX Runtime or OpenVINO) or
    ``Autocast``."""
    from tether.inference.graphs.subjects import Autocast

    if isinstance(subject, Autocast):
        return autocast_candidate(loaded, subject.dtype, label)
    return graph_candidate(subject, label)


def autocast_candidate(loaded: LoadedModel, dtype: str, label: str) -> Candidate:
    """A side running the original model under ``torch.autocast("cpu", dtype)``. It is the
    same module as side A, so compare's hooks see every layer of both and can name the
    first that parts."""
    base = from_loaded(loaded, label)
    forward = base.forward

    def run(batch: Mapping[str, Any]) -> Any:
        with torch.autocast("cpu", dtype=getattr(torch, dtype)):
            return forward(batch)

    return replace(base, forward=run, dtype=None)


def graph_candidate(
    path: Path | OpenVinoGraph, label: str, layers: Mapping[str, str] | None = None
) -> Candidate:
    """A side that runs the graph at ``path`` as the engine does (``OnnxBackend``: int8
    graphs one text per run; an ``OpenVinoGraph`` with OpenVINO); with ``layers`` (module
    name -> graph output) it also returns those outputs as named intermediates."""
    from tether.inference.graphs.subjects import graph_backend

    backend = graph_backend(path)
    wanted = dict(layers or {})
    finals = [n for n in backend.output_names if n not in set(wanted.values())]

    def forward_layers(batch: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        outputs = backend(batch)
        inner = {module: outputs[tensor] for module, tensor in wanted.items()}
        return {k: outputs[k] for k in finals}, inner

    return Candidate(
        label=label,
        kind="onnx",
        forward=lambda batch: forward_layers(batch)[0],
        forward_layers=forward_layers if wanted else None,
    )


# -- helpers ----------------------------------------------------------------------------


def _pooling_for(loaded: LoadedModel) -> str:
    """The embedding pooling the model is meant to use (spec, its ST config, else mean)."""
    st = loaded.report.sentence_transformers
    if loaded.spec.pooling:
        return loaded.spec.pooling
    if st and st.pooling:
        return st.pooling
    config = getattr(loaded.model, "config", None)
    causal = bool(getattr(config, "is_decoder", False)) or any(
        a.endswith(("LMHeadModel", "ForCausalLM"))
        for a in getattr(config, "architectures", None) or []
    )
    return "last" if causal else "mean"
