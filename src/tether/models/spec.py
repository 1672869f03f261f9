"""ModelSpec: the one recipe that loads a model identically anywhere.

All load options live here, checked when the spec is built (a value object that checks
itself, like httpx's Timeout); functions take the spec whole. A spec round-trips
through JSON so it can travel with a bundle, a Beam job or a CI gate.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.constants import DTYPES, POOLING_MODES
from tether.errors import SpecError

#: Class names that load a sentence-transformers model through its own library.
SENTENCE_TRANSFORMERS_CLASSES = ("SentenceTransformer",)

#: Keyword names that carry a credential. A spec travels (JSON, bundles, Beam job
#: graphs, pickles to workers, reprs in logs), so it never holds one: the machine that
#: loads reads its token from HF_TOKEN / `hf auth login`, or from ``token_env``.
#: (Special-token options such as ``pad_token`` or ``bos_token`` are not credentials.)
_SECRET_KEY = re.compile(
    r"^token$|(^|_)(access|api|hub|hf|bearer|refresh|id)_token$"
    r"|(^|_)(auth|password|passwd|secret|api_?key|credentials?)($|_)",
    re.I,
)
#: Token shapes that must not appear as values either (Hugging Face user/org tokens).
_SECRET_VALUE = re.compile(r"^hf_[A-Za-z0-9]{8,}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: load_kwargs keys that a ModelSpec field owns -> that field.
_OWNED_LOAD_KWARGS = {
    "pretrained_model_name_or_path": "source",
    "revision": "revision",
    "trust_remote_code": "trust_remote_code",
    "dtype": "dtype",
    "torch_dtype": "dtype",
    "device": "device",
    "device_map": "device",
}

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?|xpu(:\d+)?)$")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to load a model identically.

    Exactly one of ``model_class`` (a transformers class name such as ``AutoModel``,
    ``BertForMaskedLM``, or ``SentenceTransformer``) and ``task`` (a ``pipeline()``
    task such as ``text-classification``) must be set.
    """

    source: str
    model_class: str | None = None
    task: str | None = None
    revision: str | None = None
    trust_remote_code: bool = False
    dtype: str = "float32"
    device: str = "cpu"
    tokenizer: str | None = None
    tokenizer_kwargs: dict[str, Any] = field(default_factory=dict)
    #: Where the image processor / feature extractor / multimodal processor comes from,
    #: when not the model's own directory (as ``tokenizer`` is for the tokenizer).
    processor: str | None = None
    #: Arguments for ``transformers.pipeline()`` construction when ``task`` is set
    #: (e.g. ``{"framework": "pt"}``); call arguments are the pipeline task's options.
    pipeline_kwargs: dict[str, Any] = field(default_factory=dict)
    max_length: int | None = None
    pooling: str | None = None
    normalize: bool | None = None
    allow_new_weights: bool = False
    allow_unused_weights: bool = False
    allow_pickle: bool = False
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    #: Name of the environment variable holding the hub token on the machine that
    #: loads (default: huggingface_hub's own HF_TOKEN / login). Never the token itself.
    token_env: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    # -- validation ---------------------------------------------------------------

    def validate(self) -> None:
        """Raise SpecError on the first invalid field, naming the fix."""
        if not isinstance(self.source, str) or not self.source.strip():
            raise SpecError(
                "ModelSpec.source is empty.", "Pass a hub repo id or a local directory."
            )
        for name in ("model_class", "task", "revision", "tokenizer", "pooling"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise SpecError(
                    f"ModelSpec.{name} must be a string, got {type(value).__name__} {value!r}.",
                    f"Pass {name}='...' as a string, or leave it unset.",
                )
        for name in ("dtype", "device"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise SpecError(
                    f"ModelSpec.{name} must be a string, got {type(value).__name__} {value!r}.",
                    f"Pass {name}='...' as a string.",
                )
        for name in (
            "trust_remote_code",
            "allow_new_weights",
            "allow_unused_weights",
            "allow_pickle",
        ):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise SpecError(
                    f"ModelSpec.{name} must be True or False, got {value!r}.",
                    f"Pass {name}=True or {name}=False (JSON true / false).",
                )
        if self.normalize is not None and not isinstance(self.normalize, bool):
            raise SpecError(
                f"ModelSpec.normalize must be True, False or None, got {self.normalize!r}.",
                "Pass normalize=True or normalize=False, or leave it unset.",
            )
        if self.model_class and self.task:
            raise SpecError(
                f"ModelSpec sets both model_class={self.model_class!r} and task={self.task!r}.",
                "Set model_class to load a model class, or task to build a pipeline(), not both.",
            )
        if not self.model_class and not self.task:
            raise SpecError(
                "ModelSpec sets neither model_class nor task.",
                "Set model_class (e.g. 'AutoModel' for embeddings) or task "
                "(e.g. 'text-classification').",
            )
        if self.model_class:
            resolve_model_class(self.model_class)
        if self.task:
            resolve_task(self.task)
        if self.dtype not in DTYPES:
            raise SpecError(f"Unknown dtype {self.dtype!r}.", f"Use one of: {', '.join(DTYPES)}.")
        if not _DEVICE_RE.fullmatch(self.device):
            raise SpecError(
                f"Unknown device {self.device!r}.",
                "Use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' (GPU when the worker has one).",
            )
        if self.pooling is not None and self.pooling not in POOLING_MODES:
            raise SpecError(
                f"Unknown pooling {self.pooling!r}.",
                f"Use one of: {', '.join(POOLING_MODES)}, or leave it unset to use the "
                "model's own pooling config.",
            )
        if self.max_length is not None and (
            not isinstance(self.max_length, int)
            or isinstance(self.max_length, bool)
            or self.max_length < 1
        ):
            raise SpecError(
                f"max_length must be a positive integer, got {self.max_length!r}.",
                "Pass e.g. max_length=256, or leave it unset to use the model's limit.",
            )
        for name in ("tokenizer_kwargs", "load_kwargs", "pipeline_kwargs"):
            if not isinstance(getattr(self, name), dict):
                raise SpecError(f"ModelSpec.{name} must be a dict.", f"Pass {name}={{...}}.")
        _check_no_secrets(self.load_kwargs, "load_kwargs")
        _check_no_secrets(self.tokenizer_kwargs, "tokenizer_kwargs")
        _check_no_secrets(self.pipeline_kwargs, "pipeline_kwargs")
        if self.token_env is not None and not _ENV_NAME.match(str(self.token_env)):
            raise SpecError(
                f"token_env must name an environment variable, got {self.token_env!r}.",
                "Pass the variable's name, e.g. token_env='HF_TOKEN_READ', never the token.",
                field="token_env",
            )
        for key, owner in _OWNED_LOAD_KWARGS.items():
            if key in self.load_kwargs:
                raise SpecError(
                    f"load_kwargs sets {key!r}, which ModelSpec owns as its field {owner!r}.",
                    f"Pass {owner}=... to ModelSpec instead of load_kwargs, so the spec "
                    "records it.",
                )

    # -- identity ---------------------------------------------------------------

    @property
    def model_id(self) -> str:
        """A short id for results and metrics: ``source@revision``."""
        return f"{self.source}@{self.revision}" if self.revision else self.source

    @property
    def is_sentence_transformers(self) -> bool:
        return self.model_class in SENTENCE_TRANSFORMERS_CLASSES

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # -- serialisation ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (a spec holds no secret, so all of it can be written)."""
        return dataclasses.asdict(self)

    def token(self) -> str | None:
        """The hub token for this load, read now from ``token_env`` (None: let
        huggingface_hub find HF_TOKEN or the login store itself)."""
        return None if self.token_env is None else read_token_env(self.token_env)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Build a spec from a dict; unknown keys are an error, not silently dropped."""
        if not isinstance(data, dict):
            raise SpecError(
                f"A spec must be a JSON object, got {type(data).__name__}.",
                'Write the spec as {"source": ..., "model_class": ...}.',
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            guesses = {k: difflib.get_close_matches(k, known, n=1) for k in unknown}
            detail = ", ".join(
                f"{k!r}" + (f" (did you mean {g[0]!r}?)" if g else "") for k, g in guesses.items()
            )
            raise SpecError(
                f"Unknown ModelSpec field(s): {detail}.",
                f"Valid fields are: {', '.join(sorted(known))}.",
            )
        if "source" not in data:
            raise SpecError("The spec has no 'source'.", 'Add "source": REPO_ID_OR_DIR.')
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"The spec is not valid JSON: {exc}.", "Fix the JSON syntax.") from exc
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def load_file(cls, path: str | Path) -> ModelSpec:
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"Spec file {str(path)!r} does not exist.", "Check the path.")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(
                f"Spec file {str(path)!r} is not UTF-8 text ({exc}).",
                "Save the spec as UTF-8 JSON (ModelSpec.save writes one).",
            ) from exc
        return cls.from_json(text)


def read_token_env(name: str) -> str:
    """The value of the environment variable ``token_env`` names, read now, never kept."""
    import os

    value = os.environ.get(name)
    if not value:
        raise SpecError(
            f"token_env={name!r} names an environment variable that is not set on this machine.",
            f"Set {name} where the model is loaded (for Beam: on the workers).",
            field="token_env",
        )
    return value


def _check_no_secrets(kwargs: dict[str, Any], name: str) -> None:
    """Refuse a credential in ``kwargs``: by its key, or by its value's shape, at any depth."""

    def walk(value: Any, path: str) -> str | None:
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}[{key!r}]"
                if _SECRET_KEY.search(str(key)) and item not in (None, False):
                    return where
                found = walk(item, where)
                if found:
                    return found
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                found = walk(item, f"{path}[{index}]")
                if found:
                    return found
        elif isinstance(value, str) and _SECRET_VALUE.match(value):
            return path
        return None

    where = walk(kwargs, name)
    if where:
        # The value itself is never echoed: messages end up in logs.
        raise SpecError(
            f"ModelSpec.{where} holds a credential. A spec is written to JSON, bundles, "
            "Beam job graphs and logs, so it never carries one.",
            "Leave the token out: huggingface_hub reads HF_TOKEN or the `hf auth login` "
            "store on the machine that loads, or set token_env='VAR' to name another "
            "environment variable.",
            field=name,
        )


def is_import_path(name: str | None) -> bool:
    """True for ``"package.module:ClassName"``: a class of the user's own code (a
    ``PyTorchModelHubMixin`` model), not one of transformers."""
    return bool(name) and ":" in str(name)


def resolve_model_class(name: str) -> Any:
    """Return the transformers (or sentence-transformers) class called ``name``, or
    for ``"package.module:ClassName"`` that class (a PyTorchModelHubMixin model)."""
    if is_import_path(name):
        return _import_mixin_class(name)
    if name in SENTENCE_TRANSFORMERS_CLASSES:
        from tether.errors import require_extra

        module = require_extra("sentence_transformers", "sentence-transformers")
        return module.SentenceTransformer  # type: ignore[attr-defined]
    import transformers

    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        raise SpecError(f"{name!r} is not a class name.", "Use e.g. 'AutoModel'.")
    try:
        cls = getattr(transformers, name)
    except (AttributeError, ImportError, RuntimeError):
        cls = None
    if cls is None or not hasattr(cls, "from_pretrained") or "Tokenizer" in name:
        candidates = [n for n in dir(transformers) if n.startswith(("Auto", name[:4]))]
        guess = difflib.get_close_matches(name, candidates, n=3)
        raise SpecError(
            f"Unknown model class {name!r}: transformers {transformers.__version__} has no "
            "model class of that name.",
            (f"Did you mean {', '.join(guess)}? " if guess else "")
            + "Use a transformers model class name such as 'AutoModel', or set task instead.",
        )
    return cls


def resolve_task(task: str) -> tuple[str, dict[str, Any]]:
    """Normalise a pipeline() task name; raise SpecError listing valid tasks."""
    from transformers.pipelines import SUPPORTED_TASKS, check_task

    try:
        normalized, targeted, _options = check_task(task)
    except KeyError as exc:
        guess = difflib.get_close_matches(task, list(SUPPORTED_TASKS), n=2)
        raise SpecError(
            f"Unknown pipeline task {task!r}.",
            (f"Did you mean {', '.join(guess)}? " if guess else "")
            + f"Supported tasks: {', '.join(sorted(SUPPORTED_TASKS))}.",
        ) from exc
    return normalized, targeted


def task_model_class(task: str, model_type: str | None) -> Any:
    """The PyTorch class ``task`` builds for a config of ``model_type``: the first of the
    task's auto classes that knows the model type, as ``pipeline()`` picks it (SegFormer
    is a semantic-segmentation model although image-segmentation's first class is
    ``AutoModelForImageSegmentation``). None when the task has no PyTorch class."""
    classes = resolve_task(task)[1].get("pt") or ()
    if not classes:
        return None
    try:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING

        config_class = CONFIG_MAPPING[model_type] if model_type else None
    except KeyError:
        config_class = None
    for cls in classes:
        if config_class is not None and config_class in getattr(cls, "_model_mapping", {}):
            return cls
    return classes[0]


_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _import_mixin_class(name: str) -> Any:
    """Import ``package.module:ClassName``; it must be an ``nn.Module`` with
    huggingface_hub's ``PyTorchModelHubMixin`` (save_pretrained / from_pretrained).

    This imports the user's own installed code, named by the user, never code that came
    with a model's files: it is not ``trust_remote_code``.
    """
    import importlib

    if not _IMPORT_PATH.match(name):
        raise SpecError(
            f"model_class={name!r} is not an import path of the form 'package.module:Class'.",
            "Pass model_class='my_pkg.models:MyNet' for a PyTorchModelHubMixin model.",
            field="model_class",
        )
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpecError(
            f"model_class={name!r}: module {module_name!r} cannot be imported ({exc}).",
            "Install the package that defines the model class on this machine (and on Beam "
            "workers), or fix the import path in model_class.",
            field="model_class",
        ) from exc
    cls = getattr(module, attr, None)
    import torch
    from huggingface_hub import ModelHubMixin

    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise SpecError(
            f"model_class={name!r}: {module_name} has no torch.nn.Module class {attr!r}.",
            "Name an nn.Module subclass that uses PyTorchModelHubMixin.",
            field="model_class",
        )
    if not issubclass(cls, ModelHubMixin):
        raise SpecError(
            f"model_class={name!r} is an nn.Module without huggingface_hub's "
            "PyTorchModelHubMixin, so it has no from_pretrained() to load saved weights.",
            "Add the mixin: class MyNet(nn.Module, PyTorchModelHubMixin).",
            field="model_class",
        )
    return cls
