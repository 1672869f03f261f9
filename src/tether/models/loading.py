"""``load(spec)``: the only way tether loads a model, and the guards that make it loud.

Guards (each raises a LoadGuardError subclass that says how to opt in):

1. custom code (``auto_map``) without ``trust_remote_code`` -> refuse, instead of
   transformers silently building the built-in class;
2. pickle-only weights without ``allow_pickle`` -> refuse;
3. missing / newly initialised, unexpected or mismatched weights -> refuse unless
   ``allow_new_weights`` / ``allow_unused_weights``;
4. no tokenizer, or a tokenizer with ids beyond the embedding matrix -> refuse.
5. a tether bundle (tether.json) that is unfinished, changed, or loaded as another class
   than it was saved as -> refuse (see tether.bundles.save).
"""

from __future__ import annotations

import contextlib
import io
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.errors import (
    DeviceUnavailableError,
    ModelLoadError,
    SourceNotFoundError,
    SpecError,
    TetherError,
    TokenizerError,
    UnsafeWeightsError,
    UntrustedCustomCodeError,
    WeightMismatchError,
)
from tether.models.inspection import ModelReport, inspect, read_json
from tether.models.manifest import check_bundle_class, check_bundle_spec
from tether.models.sources import pinned_commit
from tether.models.spec import (
    ModelSpec,
    is_import_path,
    resolve_model_class,
    resolve_task,
    task_model_class,
)

_MAX_KEYS_SHOWN = 12


@dataclass
class LoadedModel:
    """A model loaded through the guards, with what is needed to run it."""

    spec: ModelSpec
    model: Any  # torch.nn.Module (or SentenceTransformer)
    tokenizer: Any
    path: Path
    report: ModelReport
    device: Any  # torch.device
    loading_info: dict[str, list[str]] = field(default_factory=dict)
    pipeline: Any = None
    #: Image processor, feature extractor (audio) or multimodal processor; None when the
    #: model has none (text models, or tensor inputs only).
    processor: Any = None
    #: An optimised bundle's evidence (its manifest's ``optimized`` section): the engine
    #: runs that graph instead of ``model`` for the evidence's task. None otherwise.
    optimized: dict[str, Any] | None = None

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @property
    def max_length(self) -> int:
        """Longest input in tokens: the spec's, else the model's own limit."""
        if self.spec.max_length:
            return self.spec.max_length
        st = self.report.sentence_transformers
        if st and st.max_seq_length:
            return int(st.max_seq_length)
        config = getattr(self.model, "config", None)
        limits = [
            getattr(config, "max_position_embeddings", None),
            getattr(config, "n_positions", None),
            getattr(self.tokenizer, "model_max_length", None),
        ]
        usable = [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
        if getattr(config, "model_type", None) in ("roberta", "xlm-roberta", "camembert"):
            usable = [
                x - 2 if x == getattr(config, "max_position_embeddings", 0) else x for x in usable
            ]
        return min(usable) if usable else 512


def load(spec: ModelSpec) -> LoadedModel:
    """Load ``spec`` through the real ``from_pretrained`` path, with every guard on.

    A hub repo id (a tether bundle or any model) resolves through huggingface_hub; the
    returned ``LoadedModel.spec`` has ``revision`` set to the commit that was loaded.
    """
    report, path = _resolve(spec)
    spec = _pinned(spec, path)
    bundle = check_bundle_spec(spec, path)  # a tether bundle's manifest, else None
    loaded = _load_checked(spec, report, path)
    check_bundle_class(bundle, loaded)
    if bundle is not None:
        loaded.optimized = bundle.optimized
    return loaded


def _pinned(spec: ModelSpec, path: Path) -> ModelSpec:
    """``spec`` with ``revision`` set to the commit its hub source resolved to."""
    commit = pinned_commit(spec.source, path)
    return spec if commit is None or commit == spec.revision else spec.replace(revision=commit)


def load_checkpoint(spec: ModelSpec) -> LoadedModel:
    """``load`` without the bundle-manifest guard (5), every other guard on.

    For the bundle code itself: ``save`` reloads its unfinished bundle (no complete
    manifest yet) and ``verify`` reloads a bundle whose files it has already hashed in
    full, to report how its outputs changed. Both check the built class themselves.
    """
    report, path = _resolve(spec)
    return _load_checked(_pinned(spec, path), report, path)


def _resolve(spec: ModelSpec) -> tuple[ModelReport, Path]:
    report = inspect(spec.source, spec.revision, token=spec.token(), **spec.load_kwargs)
    path = Path(report.path)
    if not (path / "config.json").is_file():
        raise SourceNotFoundError(
            f"{spec.source!r} is not a model directory: it has no config.json.",
            "Pass the directory that save_pretrained() wrote (config.json beside the weights).",
            source=spec.source,
        )
    return report, path


def _load_checked(spec: ModelSpec, report: ModelReport, path: Path) -> LoadedModel:
    check_custom_code(spec, report)
    check_weight_files(spec, report)
    check_config_size(spec, report, path)
    device = resolve_device(spec.device)

    if spec.is_sentence_transformers:
        model = _load_sentence_transformer(spec, path, device)
        return LoadedModel(spec, model, model.tokenizer, path, report, device)
    if is_import_path(spec.model_class):
        return _load_mixin(spec, report, path, device)

    model_cls = _model_class_for(spec, report.model_type)
    kwargs: dict[str, Any] = dict(spec.load_kwargs)
    kwargs.pop("local_files_only", None)
    kwargs.pop("cache_dir", None)
    if report.has_safe_weights:
        kwargs.setdefault("use_safetensors", True)
    try:
        with _transformers_quiet():
            model, info = model_cls.from_pretrained(
                str(path),
                trust_remote_code=spec.trust_remote_code,
                dtype=_torch_dtype(spec.dtype),
                output_loading_info=True,
                **kwargs,
            )
    except TetherError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, pickle.UnpicklingError) as exc:
        raise ModelLoadError(
            f"transformers could not load {spec.source!r} as {model_cls.__name__}: "
            f"{type(exc).__name__}: {exc}",
            f"Set model_class to the class `tether inspect` suggests for {spec.source!r} "
            "(its config's architectures).",
            source=spec.source,
            model_class=model_cls.__name__,
        ) from exc
    loading_info = {k: sorted(map(str, v)) for k, v in info.items()}
    check_loading_info(spec, model, loading_info)

    model.to(device)
    model.eval()
    tokenizer = load_tokenizer(spec, path, report)
    if tokenizer is not None:
        check_tokenizer_fits(tokenizer, model)
    processor = load_processor(spec, path, report)
    if processor is not None:
        check_processor_fits(spec, processor, model)
    loaded = LoadedModel(
        spec, model, tokenizer, path, report, device, loading_info, processor=processor
    )
    if spec.task:
        loaded.pipeline = _build_pipeline(spec, model, tokenizer, processor, device)
    return loaded


# -- guards ---------------------------------------------------------------------------


def check_custom_code(spec: ModelSpec, report: ModelReport) -> None:
    if not report.needs_custom_code or spec.trust_remote_code:
        return
    files = (
        "\n".join(f"    {f.path}  sha256:{f.sha256}" for f in report.custom_code_files)
        or "    (code lives in another repo: " + ", ".join(map(str, report.auto_map.values())) + ")"
    )
    raise UntrustedCustomCodeError(
        f"{spec.source!r} needs its own model code (config.json has auto_map: "
        f"{report.auto_map}), but trust_remote_code is off. Without it transformers would "
        f"silently build the built-in {report.model_type!r} class instead, with different "
        f"outputs.\n  Custom code files:\n{files}",
        "Review those files, then set trust_remote_code=True in the spec.",
        source=spec.source,
        files={f.path: f.sha256 for f in report.custom_code_files},
    )


def check_weight_files(spec: ModelSpec, report: ModelReport) -> None:
    """Every pickle file a load could unpickle, in any subfolder and under any model
    class, needs allow_pickle: weights_only unpickling is torch's own second line."""
    readable = report.readable_pickle_files
    if not readable or spec.allow_pickle:
        return
    names = ", ".join(w.path for w in readable)
    raise UnsafeWeightsError(
        f"{spec.source!r} has pickle weight files that loading would unpickle ({names}), "
        "with no safetensors file beside them; unpickling can run arbitrary code.",
        "Prefer a safetensors copy of the model (`tether save` writes one), or set "
        "allow_pickle=True if you trust the source.",
        source=spec.source,
        files=[w.path for w in readable],
    )


#: A config may describe a model this many times larger than its weights (a new head,
#: tied or buffer-only parameters) before it is refused as describing other weights.
CONFIG_SIZE_FACTOR = 4


def implied_parameters(config: dict[str, Any]) -> int | None:
    """A lower estimate of the parameter count a transformer config asks for, from its
    standard size fields (embeddings + attention + MLP per layer); None when the config
    does not use them. Cheap: nothing is built."""

    def first(*names: str) -> int | None:
        for name in names:
            value = config.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    hidden = first("hidden_size", "n_embd", "d_model", "dim")
    layers = first("num_hidden_layers", "n_layer", "num_layers", "n_layers")
    if not hidden or not layers:
        return None
    inner = first("intermediate_size", "n_inner", "ffn_dim", "hidden_dim") or 4 * hidden
    experts = first("num_local_experts", "num_experts") or 1
    vocab = first("vocab_size") or 0
    kv = first("num_key_value_heads")
    heads = first("num_attention_heads", "n_head")
    attention = 2 * hidden * hidden + (
        2 * hidden * (hidden * kv // heads) if kv and heads else 2 * hidden * hidden
    )
    return vocab * hidden + layers * (attention + 2 * hidden * inner * experts)


def check_config_size(spec: ModelSpec, report: ModelReport, path: Path) -> None:
    """Refuse, before building anything, a config that asks for far more parameters
    than its weights hold: a million layers would cost minutes and gigabytes before
    transformers reported the weights missing."""
    weights = report.num_parameters
    config_path = path / "config.json"
    if not weights or not config_path.is_file():
        return
    implied = implied_parameters(read_json(config_path))
    if implied is None or implied <= CONFIG_SIZE_FACTOR * weights + 1_000_000:
        return
    raise WeightMismatchError(
        f"{spec.source!r}: config.json describes a model of at least {implied:,} parameters, "
        f"but its weight files hold {weights:,}. The config does not describe these weights "
        "(look at num_hidden_layers, hidden_size, intermediate_size, vocab_size).",
        "Use the config.json that was saved with these weights (save_pretrained writes both).",
        source=spec.source,
    )


def check_loading_info(spec: ModelSpec, model: Any, info: dict[str, list[str]]) -> None:
    """Turn transformers' load report into an error unless the spec allows it."""
    problems: list[str] = []
    if info.get("missing_keys") and not spec.allow_new_weights:
        problems.append(
            f"newly initialised (missing from the checkpoint): {_keys(info['missing_keys'])}"
        )
    if info.get("mismatched_keys") and not spec.allow_new_weights:
        problems.append(f"shape-mismatched: {_keys(info['mismatched_keys'])}")
    if info.get("unexpected_keys") and not spec.allow_unused_weights:
        problems.append(
            f"unused (in the checkpoint but not in {type(model).__name__}): "
            f"{_keys(info['unexpected_keys'])}"
        )
    if not problems:
        return
    raise WeightMismatchError(
        f"Loading {spec.source!r} as {type(model).__name__} does not use the checkpoint "
        "as is. Weights " + "; ".join(problems) + ".",
        "If this is intended, set allow_new_weights=True (adding a head to fine-tune) or "
        "allow_unused_weights=True (dropping a head) in the spec; otherwise set "
        "model_class to the class `tether inspect` suggests (the checkpoint's own).",
        source=spec.source,
        model_class=type(model).__name__,
        missing_keys=list(info.get("missing_keys") or []),
        unexpected_keys=list(info.get("unexpected_keys") or []),
        mismatched_keys=list(info.get("mismatched_keys") or []),
    )


def _keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_KEYS_SHOWN])
    more = len(keys) - _MAX_KEYS_SHOWN
    return f"{len(keys)} key(s): {shown}" + (f", ... (+{more} more)" if more > 0 else "")


def load_tokenizer(spec: ModelSpec, path: Path, report: ModelReport) -> Any:
    """The model's tokenizer, or ``spec.tokenizer``'s; None when the model directory has
    none (an image or audio model, or tensor inputs only: text tasks then refuse)."""
    from transformers import AutoTokenizer

    source = spec.tokenizer or str(path)
    files = (
        report.tokenizer_files
        if spec.tokenizer is None
        else inspect(spec.tokenizer, None, token=spec.token(), **spec.load_kwargs).tokenizer_files
    )
    if not files and spec.tokenizer is None:
        return None
    if not files:
        # transformers 5 builds an empty tokenizer here instead of failing.
        raise TokenizerError(
            f"No usable tokenizer for {spec.source!r}: {source!r} has no tokenizer files "
            "(tokenizer.json, vocab.txt, ...).",
            "Save the tokenizer next to the model (tokenizer.save_pretrained(dir)) or set "
            "ModelSpec.tokenizer to the repo or directory that has it.",
            source=spec.source,
            tokenizer=source,
        )
    try:
        return AutoTokenizer.from_pretrained(
            source, trust_remote_code=spec.trust_remote_code, **spec.tokenizer_kwargs
        )
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise TokenizerError(
            f"No usable tokenizer for {spec.source!r} at {source!r} ({type(exc).__name__}: {exc}).",
            "Save the tokenizer next to the model (tokenizer.save_pretrained(dir)) or set "
            "ModelSpec.tokenizer to the repo or directory that has it.",
            source=spec.source,
            tokenizer=source,
        ) from exc


def load_processor(spec: ModelSpec, path: Path, report: ModelReport) -> Any:
    """The image processor, feature extractor or multimodal processor the model's files
    (or ``spec.processor``'s) describe; None when there is none."""
    import transformers

    source = spec.processor or str(path)
    files = (
        report.preprocessor_files
        if spec.processor is None
        else inspect(
            spec.processor, None, token=spec.token(), **spec.load_kwargs
        ).preprocessor_files
    )
    if not files:
        if spec.processor is None:
            return None
        raise TokenizerError(
            f"{spec.processor!r} has no preprocessor files (preprocessor_config.json, "
            "processor_config.json).",
            "Set processor to the repo or directory the model's processor was saved in.",
            source=spec.source,
            tokenizer=spec.processor,
        )
    root = Path(inspect(source, None, token=spec.token(), **spec.load_kwargs).path)
    config = read_json(root / files[0]) if "preprocessor_config.json" in files else {}
    if "processor_config.json" in files or config.get("processor_class"):
        kind = "AutoProcessor"
    elif "image_processor_type" in config:
        kind = "AutoImageProcessor"
    else:
        kind = "AutoFeatureExtractor"
    try:
        return getattr(transformers, kind).from_pretrained(
            str(root), trust_remote_code=spec.trust_remote_code
        )
    except (OSError, ValueError, TypeError, KeyError, ImportError) as exc:
        raise TokenizerError(
            f"No usable preprocessor for {spec.source!r} at {source!r} "
            f"({kind}: {type(exc).__name__}: {exc}).",
            "Save the processor next to the model (processor.save_pretrained(dir)) or set "
            "processor to the repo or directory that has it.",
            source=spec.source,
            tokenizer=source,
        ) from exc


def check_processor_fits(spec: ModelSpec, processor: Any, model: Any) -> None:
    """An image processor must make the images the model was configured for (a ViT
    with 224-pixel position embeddings fed 32-pixel crops would fail or mislead)."""
    image_processor = getattr(processor, "image_processor", processor)
    size = getattr(image_processor, "crop_size", None) or getattr(image_processor, "size", None)
    config = getattr(model, "config", None)
    config = getattr(config, "vision_config", config)
    expected = getattr(config, "image_size", None)
    if size is None or not isinstance(expected, int):
        return

    def field(name: str) -> Any:  # a dict in older transformers, a SizeDict in newer
        return size.get(name) if isinstance(size, dict) else getattr(size, name, None)

    made = field("height") or field("shortest_edge")
    if made is not None and made != expected:
        raise TokenizerError(
            f"The preprocessor of {spec.source!r} makes {made}-pixel images but the model "
            f"expects {expected}-pixel ones (config image_size).",
            "Use the processor the model was trained with (processor=...), or fix its size.",
            source=spec.source,
        )


def _input_embeddings(model: Any) -> Any:
    """The token embedding matrix; a multimodal model's text tower holds it (CLIP)."""
    for owner in (model, getattr(model, "text_model", None)):
        if owner is not None and hasattr(owner, "get_input_embeddings"):
            try:
                return owner.get_input_embeddings()
            except NotImplementedError:
                continue
    return None


def check_tokenizer_fits(tokenizer: Any, model: Any) -> None:
    embeddings = _input_embeddings(model)
    rows = getattr(embeddings, "num_embeddings", None)
    if rows is None:
        return
    size = len(tokenizer)
    if size > rows:
        raise TokenizerError(
            f"The tokenizer has {size} tokens but the model's embedding matrix has only "
            f"{rows} rows: token ids >= {rows} would index past it.",
            "Use the tokenizer the model was trained with, or call "
            "model.resize_token_embeddings(len(tokenizer)) and fine-tune before saving.",
        )


# -- helpers ------------------------------------------------------------------------------


def resolve_device(device: str) -> Any:
    """``auto`` picks CUDA, then MPS, then CPU, on the machine that runs the model."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"The spec asks for device {device!r} but this machine has no CUDA GPU.",
            "Set device='auto' to use a GPU only where there is one, or device='cpu'.",
            device=device,
        )
    return torch.device(device)


@contextlib.contextmanager
def _transformers_quiet() -> Iterator[None]:
    """Silence transformers' own load-report table while loading: tether's guards report
    the same keys as an error (or accept them on purpose), and the table would otherwise
    spill onto stderr ahead of that error."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _torch_dtype(dtype: str) -> Any:
    import torch

    return "auto" if dtype == "auto" else getattr(torch, dtype)


def _load_mixin(spec: ModelSpec, report: ModelReport, path: Path, device: Any) -> LoadedModel:
    """A PyTorchModelHubMixin model named by import path: its own ``from_pretrained``
    (config.json -> ``__init__`` arguments, then model.safetensors), with the weight guard.
    """
    from safetensors.torch import load_model

    cls = resolve_model_class(spec.model_class or "")
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise ModelLoadError(
            f"{spec.source!r} has no model.safetensors, which {cls.__name__}.from_pretrained "
            "reads (PyTorchModelHubMixin.save_pretrained writes it).",
            "Save the model with save_pretrained() (safetensors) and load that directory.",
            source=spec.source,
            model_class=cls.__name__,
        )
    kwargs = {
        k: v for k, v in spec.load_kwargs.items() if k not in ("cache_dir", "local_files_only")
    }
    try:
        # huggingface_hub print()s "Loading weights from local directory": keep it out of
        # standard output, where it would break `--json` and JSONL output.
        with contextlib.redirect_stdout(io.StringIO()):
            model = cls.from_pretrained(str(path), **kwargs)
        # The mixin loads with strict=False and drops the report of missing and unused
        # keys; load again to get it, so that the weight guard sees what transformers'
        # loading_info would show.
        missing, unexpected = load_model(model, str(weights), strict=False)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise ModelLoadError(
            f"{cls.__name__}.from_pretrained could not load {spec.source!r}: "
            f"{type(exc).__name__}: {exc}",
            "Check that config.json holds the __init__ arguments of model_class and that the "
            "weights were saved from the same class.",
            source=spec.source,
            model_class=cls.__name__,
        ) from exc
    info = {
        "missing_keys": sorted(map(str, missing)),
        "unexpected_keys": sorted(map(str, unexpected)),
        "mismatched_keys": [],
    }
    check_loading_info(spec, model, info)
    dtype = _torch_dtype(spec.dtype)
    if dtype != "auto":
        model.to(dtype)
    model.to(device)
    model.eval()
    return LoadedModel(spec, model, None, path, report, device, info)


def _model_class_for(spec: ModelSpec, model_type: str | None) -> Any:
    if spec.model_class:
        return resolve_model_class(spec.model_class)
    cls = task_model_class(spec.task or "", model_type)
    if cls is None:
        raise SpecError(
            f"Task {spec.task!r} has no PyTorch model class in transformers.",
            "Pick another task, or set model_class.",
            field="task",
        )
    return cls


def _build_pipeline(
    spec: ModelSpec, model: Any, tokenizer: Any, processor: Any, device: Any
) -> Any:
    """``transformers.pipeline`` over the already-loaded (guarded) model and its
    preprocessors, with ``spec.pipeline_kwargs`` as construction arguments."""
    from transformers import pipeline

    task, _ = resolve_task(spec.task or "")
    parts: dict[str, Any] = {"tokenizer": tokenizer} if tokenizer is not None else {}
    if processor is not None:
        import transformers

        if isinstance(processor, transformers.ImageProcessingMixin):
            parts["image_processor"] = processor
        elif isinstance(processor, transformers.FeatureExtractionMixin):
            parts["feature_extractor"] = processor
        else:
            parts["processor"] = processor
            parts.setdefault("tokenizer", getattr(processor, "tokenizer", None))
            for name in ("image_processor", "feature_extractor"):
                if getattr(processor, name, None) is not None:
                    parts[name] = getattr(processor, name)
    build: Any = pipeline  # its overloads are keyed on literal task names; ours is a str
    try:
        return build(
            task,
            model=model,
            device=device,
            **{k: v for k, v in parts.items() if v is not None},
            **spec.pipeline_kwargs,
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise SpecError(
            f"transformers could not build a {task!r} pipeline for {spec.source!r}: {exc}",
            "Check task and pipeline_kwargs against transformers.pipeline()'s arguments.",
            field="pipeline_kwargs",
        ) from exc


def _load_sentence_transformer(spec: ModelSpec, path: Path, device: Any) -> Any:
    from tether.errors import require_extra

    st = require_extra("sentence_transformers", "sentence-transformers")
    model_kwargs = {"dtype": _torch_dtype(spec.dtype)}
    extra: dict[str, Any] = {}
    if spec.tokenizer_kwargs:
        extra["processor_kwargs"] = spec.tokenizer_kwargs
    model = st.SentenceTransformer(  # type: ignore[attr-defined]
        str(path),
        device=str(device),
        trust_remote_code=spec.trust_remote_code,
        model_kwargs=model_kwargs,
        **extra,
    )
    if spec.max_length:
        model.max_seq_length = spec.max_length
    model.eval()
    return model
