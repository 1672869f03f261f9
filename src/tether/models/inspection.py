"""Look at a model directory or cached hub repo without running any of its code.

Only JSON files and safetensors headers are parsed; pickle weight files are listed
but never opened, because unpickling them can execute arbitrary code.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tether.constants import (
    OTHER_WEIGHT_SUFFIXES,
    PICKLE_WEIGHT_SUFFIXES,
    PREPROCESSOR_FILES,
    SAFE_WEIGHT_SUFFIXES,
    TOKENIZER_FILES,
)
from tether.errors import InputError
from tether.models.sources import resolve_source

#: Weight-name prefixes (after the base-model prefix) that reveal a head.
HEAD_PREFIXES: dict[str, str] = {
    "cls.predictions": "masked-lm",
    "cls.seq_relationship": "next-sentence",
    "vocab_projector": "masked-lm",
    "vocab_transform": "masked-lm",
    "lm_head": "lm-head",
    "pre_classifier": "classification",
    "classifier": "classification",
    "score": "classification",
    "qa_outputs": "question-answering",
    "pooler": "pooler",
}


@dataclass
class CodeFile:
    path: str
    sha256: str
    size: int


@dataclass
class WeightFile:
    path: str
    format: str  # "safetensors" | "pickle" | "h5" | "msgpack" | "onnx" | "gguf"
    size: int
    safe: bool  # loading it cannot execute code


@dataclass
class SentenceTransformersInfo:
    modules: list[str]
    pooling: str | None
    normalize: bool
    max_seq_length: int | None


@dataclass
class ModelReport:
    """Facts about a model directory, gathered without executing its code."""

    source: str
    path: str
    model_type: str | None
    architectures: list[str]
    auto_map: dict[str, Any]
    custom_code_files: list[CodeFile]
    weight_files: list[WeightFile]
    tokenizer_files: list[str]
    sentence_transformers: SentenceTransformersInfo | None
    heads: list[str]
    base_prefix: str | None
    num_parameters: int | None
    vocab_size: int | None
    labels: list[str]
    warnings: list[str] = field(default_factory=list)
    preprocessor_files: list[str] = field(default_factory=list)
    #: What the preprocessor takes: "text", "image", "audio" or "multimodal".
    modality: str = "text"

    @property
    def needs_custom_code(self) -> bool:
        return bool(self.auto_map)

    @property
    def has_tokenizer(self) -> bool:
        return bool(self.tokenizer_files)

    @property
    def has_safe_weights(self) -> bool:
        """safetensors weights at the top level, where from_pretrained reads them."""
        return any(w.format == "safetensors" and "/" not in w.path for w in self.weight_files)

    @property
    def pickle_weight_files(self) -> list[WeightFile]:
        return [w for w in self.weight_files if w.format == "pickle"]

    @property
    def readable_pickle_files(self) -> list[WeightFile]:
        """Pickle weight files a loader would unpickle: those in any folder (the model's
        own, or a sentence-transformers module's) that has no safetensors file beside
        them. Loaders prefer safetensors where a folder has both (tether forces it for
        the model's own folder); another format beside a pickle (ONNX, h5) is no
        protection, since PyTorch loaders never read it."""
        safe_dirs = {_folder(w.path) for w in self.weight_files if w.format == "safetensors"}
        return [w for w in self.pickle_weight_files if _folder(w.path) not in safe_dirs]

    @property
    def suggested_class(self) -> str:
        """The class that loads this checkpoint as it is, heads included: its config's
        own architecture; for custom code the first ``auto_map`` model class (with trust);
        ``AutoModel`` when the config names none."""
        if self.auto_map:
            return next((k for k in self.auto_map if k.startswith("AutoModel")), "AutoModel")
        return self.architectures[0] if self.architectures else "AutoModel"

    @property
    def suggested_task(self) -> str | None:
        """The pipeline() task the checkpoint's head serves (None: a base model)."""
        if not self.architectures:
            return None
        task = task_for_class(self.architectures[0])
        if task == "text-classification" and self.modality == "audio":
            return "audio-classification"  # Wav2Vec2ForSequenceClassification & co.
        return task

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["needs_custom_code"] = self.needs_custom_code
        data["has_tokenizer"] = self.has_tokenizer
        data["suggested_class"] = self.suggested_class
        data["suggested_task"] = self.suggested_task
        return data


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


#: (real path, device, inode, size, mtime_ns, ctime_ns) -> sha256. Any write to a file
#: changes its ctime (which no user call can set back), so a hit is the same bytes.
_HASHES: dict[tuple[str, int, int, int, int, int], str] = {}
_HASHES_MAX = 4096


def sha256_cached(path: Path) -> str:
    """``sha256_file`` hashed once per file version in this process: loading a bundle
    hashes every weight file, and the second load of the same files costs a stat."""
    stat = path.stat()
    key = (
        str(path.resolve()),
        stat.st_dev,
        stat.st_ino,
        stat.st_size,
        stat.st_mtime_ns,
        stat.st_ctime_ns,
    )
    digest = _HASHES.get(key)
    if digest is None:
        digest = sha256_file(path)
        if len(_HASHES) >= _HASHES_MAX:
            _HASHES.pop(next(iter(_HASHES)))
        _HASHES[key] = digest
    return digest


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(
            f"Could not read {path}: {exc}.", "Check that the file is valid JSON."
        ) from exc


def safetensors_header(path: Path) -> dict[str, Any]:
    """Parse a safetensors header (8-byte length + JSON) without loading tensors.

    Raises InputError for anything that is not a whole safetensors file: a short or
    absurd length, a header that is not a JSON object, tensors reaching past the end.
    """
    size = path.stat().st_size

    def bad(why: str) -> InputError:
        return InputError(
            f"{path} is not a valid safetensors file: {why}.",
            "The file is truncated or corrupt: download or save the model again.",
            path=str(path),
        )

    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise bad("shorter than its 8-byte header length")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(100_000_000, size - 8):
            raise bad(f"its header claims {length:,} bytes in a {size:,}-byte file")
        try:
            header = json.loads(handle.read(length).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise bad(f"its header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    header.pop("__metadata__", None)
    data = size - 8 - length
    for name, info in header.items():
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data
        ):
            raise bad(f"tensor {name!r} lies outside the file's {data:,} data bytes")
    return header


def inspect(
    source: str, revision: str | None = None, *, token: str | None = None, **load_kwargs: Any
) -> ModelReport:
    """Report what a model is and needs, without running any of its code.

    ``token`` is used to download a hub repo and is not kept anywhere.
    """
    root = resolve_source(source, revision, load_kwargs, token)
    config_path = root / "config.json"
    config: dict[str, Any] = read_json(config_path) if config_path.is_file() else {}
    warnings: list[str] = []
    if not config:
        warnings.append("no config.json: transformers cannot load this directory")

    auto_map = dict(config.get("auto_map") or {})
    code_files = _code_files(root)
    for module in auto_map_modules(auto_map):
        if "--" in module:
            warnings.append(f"auto_map points to code in another repo: {module}")
        elif not (root / f"{module.replace('.', '/')}.py").is_file():
            warnings.append(f"auto_map names {module}.py, which is missing")

    weights = _weight_files(root)
    if weights and not any(w.safe for w in weights):
        warnings.append("only pickle weights: loading them can run code (allow_pickle needed)")
    if not weights:
        warnings.append("no weight files found")

    keys, num_params = _weight_keys(root, weights)
    base_prefix = config.get("model_type")
    heads, prefix_found = _heads(keys, base_prefix)

    tokenizer_files = sorted(f for f in TOKENIZER_FILES if (root / f).is_file())
    preprocessor_files = sorted(f for f in PREPROCESSOR_FILES if (root / f).is_file())
    if not tokenizer_files and not preprocessor_files:
        warnings.append("no tokenizer or preprocessor files: tensor inputs only")

    id2label = config.get("id2label") or {}
    labels = [id2label[k] for k in sorted(id2label, key=lambda k: int(k))] if id2label else []
    return ModelReport(
        source=source,
        path=str(root),
        model_type=config.get("model_type"),
        architectures=list(config.get("architectures") or []),
        auto_map=auto_map,
        custom_code_files=code_files,
        weight_files=weights,
        tokenizer_files=tokenizer_files,
        sentence_transformers=_sentence_transformers(root),
        heads=heads,
        base_prefix=base_prefix if prefix_found else None,
        num_parameters=num_params,
        vocab_size=config.get("vocab_size"),
        labels=labels,
        warnings=warnings,
        preprocessor_files=preprocessor_files,
        modality=_modality(root, preprocessor_files, tokenizer_files),
    )


def auto_map_modules(auto_map: dict[str, Any]) -> list[str]:
    """The code modules a config's ``auto_map`` names (``modeling_x`` of ``modeling_x.Cls``)."""
    refs: list[str] = []
    for value in auto_map.values():
        for ref in value if isinstance(value, list) else [value]:
            if isinstance(ref, str):
                refs.append(ref.rsplit(".", 1)[0])
    return sorted(set(refs))


#: Head class name endings -> the pipeline() task (and Hub pipeline_tag) they serve.
HEAD_TASKS = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForSeq2SeqLM", "text2text-generation"),
    ("ForConditionalGeneration", "text2text-generation"),
    ("ForImageClassification", "image-classification"),
    ("ForObjectDetection", "object-detection"),
    ("ForSemanticSegmentation", "image-segmentation"),
    ("ForAudioClassification", "audio-classification"),
    ("ForSequenceClassificationAudio", "audio-classification"),
    ("ForCTC", "automatic-speech-recognition"),
    ("ForSpeechSeq2Seq", "automatic-speech-recognition"),
)


def task_for_class(class_name: str) -> str | None:
    """The pipeline() task a model class's head serves, from its name; None for none."""
    return next((task for suffix, task in HEAD_TASKS if class_name.endswith(suffix)), None)


def _modality(root: Path, preprocessor_files: list[str], tokenizer_files: list[str]) -> str:
    """What the model's preprocessor takes, from its saved config (no code run)."""
    if "processor_config.json" in preprocessor_files:
        return "multimodal"
    if "preprocessor_config.json" not in preprocessor_files:
        return "text"
    config = read_json(root / "preprocessor_config.json")
    kind = "audio" if "sampling_rate" in config else "image"
    return "multimodal" if tokenizer_files else kind


def _folder(relative: str) -> str:
    return relative.rpartition("/")[0]


def _code_files(root: Path) -> list[CodeFile]:
    files = sorted(p for p in root.rglob("*.py") if ".cache" not in p.parts)
    return [CodeFile(str(p.relative_to(root)), sha256_file(p), p.stat().st_size) for p in files]


def _weight_files(root: Path) -> list[WeightFile]:
    found: list[WeightFile] = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or ".cache" in p.parts:
            continue
        name = p.name.lower()
        if name.endswith(SAFE_WEIGHT_SUFFIXES):
            fmt, safe = "safetensors", True
        elif name.endswith(PICKLE_WEIGHT_SUFFIXES) and not name.startswith("training_args"):
            fmt, safe = "pickle", False
        elif name.endswith(OTHER_WEIGHT_SUFFIXES):
            fmt, safe = name.rsplit(".", 1)[-1], name.endswith(".onnx")
        else:
            continue
        found.append(WeightFile(str(p.relative_to(root)), fmt, p.stat().st_size, safe))
    return found


def _weight_keys(root: Path, weights: list[WeightFile]) -> tuple[list[str], int | None]:
    """Tensor names and parameter count, from safetensors headers only."""
    keys: list[str] = []
    total = 0
    seen_safetensors = False
    for w in weights:
        if w.format != "safetensors" or "/" in w.path:  # sub-module dirs (e.g. 2_Dense) aside
            continue
        seen_safetensors = True
        for name, meta in safetensors_header(root / w.path).items():
            keys.append(name)
            count = 1
            for dim in meta.get("shape", []):
                count *= int(dim)
            total += count
    return keys, total if seen_safetensors else None


def _heads(keys: list[str], base_prefix: str | None) -> tuple[list[str], bool]:
    heads: set[str] = set()
    prefix_found = False
    for key in keys:
        name = key
        if base_prefix and key.startswith(base_prefix + "."):
            prefix_found = True
            name = key[len(base_prefix) + 1 :]
        for prefix, head in HEAD_PREFIXES.items():
            if name == prefix or name.startswith(prefix + "."):
                heads.add(head)
    return sorted(heads), prefix_found


def _sentence_transformers(root: Path) -> SentenceTransformersInfo | None:
    modules_path = root / "modules.json"
    if not modules_path.is_file():
        return None
    modules = read_json(modules_path)
    types = [str(m.get("type", "")) for m in modules]
    pooling = None
    for m in modules:
        if str(m.get("type", "")).endswith("Pooling"):
            pooling = _pooling_mode(read_json(root / m.get("path", "") / "config.json"))
    max_seq_length = None
    bert_config = root / "sentence_bert_config.json"
    if bert_config.is_file():
        max_seq_length = read_json(bert_config).get("max_seq_length")
    return SentenceTransformersInfo(
        modules=types,
        pooling=pooling,
        normalize=any(t.endswith("Normalize") for t in types),
        max_seq_length=max_seq_length,
    )


def _pooling_mode(config: dict[str, Any]) -> str | None:
    if config.get("pooling_mode"):
        return str(config["pooling_mode"])
    for key, mode in (
        ("pooling_mode_cls_token", "cls"),
        ("pooling_mode_mean_tokens", "mean"),
        ("pooling_mode_max_tokens", "max"),
        ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
        ("pooling_mode_lasttoken", "last"),
    ):
        if config.get(key):
            return mode
    return None


def format_report(report: ModelReport) -> str:
    """A human-readable table of the report."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"tether inspect: {report.source}", show_header=False, box=None)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("path", report.path)
    table.add_row("model_type", str(report.model_type))
    table.add_row("architectures", ", ".join(report.architectures) or "-")
    table.add_row("suggested class", report.suggested_class)
    if report.suggested_task:
        table.add_row("suggested task", report.suggested_task)
    if report.needs_custom_code:
        table.add_row("custom code", "YES: needs trust_remote_code=True")
        for key, value in report.auto_map.items():
            table.add_row("  auto_map", f"{key} -> {value}")
    else:
        table.add_row("custom code", "no")
    for f in report.custom_code_files:
        table.add_row("  code file", f"{f.path}  sha256:{f.sha256[:16]}…  {f.size} B")
    for w in report.weight_files:
        kind = "safe" if w.safe else "PICKLE (can run code)"
        table.add_row("weights", f"{w.path}  {w.format}  {w.size / 1e6:.1f} MB  {kind}")
    if report.num_parameters is not None:
        table.add_row("parameters", f"{report.num_parameters:,}")
    table.add_row("heads in weights", ", ".join(report.heads) or "none (base model only)")
    table.add_row("vocab_size", str(report.vocab_size))
    if report.labels:
        table.add_row("labels", ", ".join(report.labels))
    table.add_row("tokenizer", ", ".join(report.tokenizer_files) or "none")
    if report.preprocessor_files:
        table.add_row("preprocessor", ", ".join(report.preprocessor_files))
    st = report.sentence_transformers
    if st:
        table.add_row(
            "sentence-transformers",
            f"pooling={st.pooling} normalize={st.normalize} max_seq_length={st.max_seq_length}",
        )
    for warning in report.warnings:
        table.add_row("[yellow]warning[/]", warning)
    buffer = StringIO()
    Console(file=buffer, width=120, force_terminal=False).print(table)
    return buffer.getvalue()
