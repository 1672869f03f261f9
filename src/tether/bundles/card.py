"""Model cards: write one for a bundle, and score any card for what a reader needs.

A card that says nothing about how a model must be loaded, what it was trained on or
where it fails is how models get reused wrongly. ``write_card`` fills every section from
what tether knows (spec, class, config, versions) and marks what it cannot know as
``TODO``; ``check_card`` scores a card against the same sections and metadata fields,
for CI. Both are built on ``huggingface_hub.ModelCard`` so cards stay Hub-compatible.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.errors import CardError
from tether.models.inspection import inspect, read_json, task_for_class
from tether.models.spec import is_import_path

if TYPE_CHECKING:
    from tether.models.manifest import Manifest

TODO = "**TODO**"
#: Placeholders (ours, and the Hub template's) that mean "not filled in".
_PLACEHOLDER_RE = re.compile(r"\btodo\b|more information needed", re.IGNORECASE)
DEFAULT_MIN_SCORE = 0.8


@dataclass(frozen=True)
class Section:
    """A section a reader needs; a card has it when a heading matches one of ``keywords``."""

    key: str
    title: str
    keywords: tuple[str, ...]
    exact: tuple[str, ...] = ()  # headings that match only when they are exactly this

    def matches(self, heading: str) -> bool:
        h = heading.lower().strip()
        return h in self.exact or any(k in h for k in self.keywords)


SECTIONS: tuple[Section, ...] = (
    Section(
        "how_to_load",
        "How to load",
        ("how to load", "usage", "how to use", "get started", "getting started", "loading"),
    ),
    Section("intended_use", "Intended use", ("intended use", "direct use"), exact=("uses",)),
    Section("out_of_scope", "Out-of-scope use", ("out-of-scope", "out of scope", "misuse")),
    Section("training_data", "Training data", ("training data", "dataset")),
    Section("preprocessing", "Preprocessing", ("preprocessing", "pre-processing")),
    Section(
        "architecture",
        "Architecture and hyperparameters",
        ("architecture", "hyperparameter", "hyper parameter", "hyper-parameter"),
    ),
    Section("evaluation", "Evaluation results", ("evaluation", "results", "benchmark")),
    Section("bias_risks", "Bias, risks and limitations", ("bias", "risk", "limitation")),
    Section(
        "environment",
        "Environment",
        ("environment", "library versions", "framework versions", "software", "compute infra"),
    ),
    Section(
        "examples",
        "Examples and demos",
        ("example", "demo", "quickstart", "quick start", "tutorial", "notebook"),
    ),
    Section(
        "acknowledgments",
        "Acknowledgments",
        ("acknowledg", "thanks", "credits", "funding"),
    ),
    Section("contact", "Contact", ("contact", "maintainer", "authors")),
)

#: YAML metadata fields; ``model-index`` counts when a card has model-index or metrics.
METADATA_FIELDS: tuple[str, ...] = (
    "library_name",
    "pipeline_tag",
    "base_model",
    "license",
    "language",
    "datasets",
    "model-index",
)


# -- what the user tells us ---------------------------------------------------------------


@dataclass
class TrainingData:
    """Where the training data came from and what it looks like."""

    source: str | None = None
    license: str | None = None
    size: str | int | None = None
    class_balance: dict[str, int] | str | None = None


@dataclass
class CardInfo:
    """What tether cannot read from a model: given by the user, else left as TODO."""

    model_name: str | None = None
    license: str | None = None
    language: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    base_model: str | None = None
    tags: list[str] = field(default_factory=list)
    intended_use: str | None = None
    out_of_scope_use: str | None = None
    training_data: TrainingData | None = None
    preprocessing: str | None = None
    hyperparameters: dict[str, Any] | str | None = None
    #: huggingface_hub.EvalResult fields: task_type, dataset_type, dataset_name,
    #: metric_type, metric_value (and optional others).
    eval_results: list[dict[str, Any]] = field(default_factory=list)
    evaluation: str | None = None
    bias_risks_limitations: str | None = None
    #: Worked examples of use, links to demos or notebooks.
    examples: str | None = None
    #: Who and what the model owes: base model authors, data, compute, funding.
    acknowledgments: str | None = None
    contact: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CardInfo:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise CardError(
                f"Unknown card info field(s): {', '.join(unknown)}.",
                f"Valid fields are: {', '.join(sorted(known))}.",
            )
        data = dict(data)
        if isinstance(data.get("training_data"), dict):
            td = data["training_data"]
            bad = sorted(set(td) - set(TrainingData.__dataclass_fields__))
            if bad:
                raise CardError(
                    f"Unknown training_data field(s): {', '.join(bad)}.",
                    "Use source, license, size and class_balance.",
                )
            data["training_data"] = TrainingData(**td)
        for key in ("language", "datasets", "tags"):
            if isinstance(data.get(key), str):
                data[key] = [data[key]]
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> CardInfo:
        """Read card info from a JSON or YAML file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            if path.suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except (OSError, ValueError) as exc:
            raise CardError(
                f"Could not read card info {str(path)!r}: {exc}.",
                "Pass a JSON or YAML file whose keys are CardInfo fields.",
            ) from exc
        if not isinstance(data, dict):
            raise CardError(f"{str(path)!r} is not a mapping.", "Write it as a JSON object.")
        return cls.from_dict(data)


# -- writing ------------------------------------------------------------------------------


def write_card(
    bundle_dir: str | Path,
    manifest: Manifest,
    info: CardInfo | None = None,
    source_dir: str | Path | None = None,
    model_name: str | None = None,
) -> Path:
    """Write ``README.md`` in ``bundle_dir``; metadata the source's own card has is kept."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    bundle_dir = Path(bundle_dir)
    info = info or CardInfo()
    inherited = _source_metadata(Path(source_dir) if source_dir else None)
    spec = manifest.spec
    name = info.model_name or model_name or str(manifest.origin.get("source") or "model")
    try:
        eval_results = [EvalResult(**r) for r in info.eval_results] or None
    except TypeError as exc:
        raise CardError(
            f"An eval_results entry is not a valid EvalResult: {exc}.",
            "Give task_type, dataset_type, dataset_name, metric_type and metric_value.",
        ) from exc
    data = ModelCardData(
        model_name=name,
        library_name=_library_name(str(spec.get("model_class") or "")),
        pipeline_tag=_pipeline_tag(spec, manifest.class_name),
        base_model=info.base_model or inherited.get("base_model"),
        license=info.license or inherited.get("license"),
        language=info.language or inherited.get("language"),
        datasets=info.datasets or inherited.get("datasets"),
        metrics=inherited.get("metrics") if not eval_results else None,
        tags=sorted({"tether", *(info.tags or inherited.get("tags") or [])}),
        eval_results=eval_results,
    )
    body = _body(bundle_dir, manifest, info, data, name)
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
    path = bundle_dir / "README.md"
    card.save(path)
    return path


def _source_metadata(source_dir: Path | None) -> dict[str, Any]:
    """YAML metadata of the source model's own card, if it has one."""
    if source_dir is None or not (source_dir / "README.md").is_file():
        return {}
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(source_dir / "README.md").data.to_dict()
    except (ValueError, OSError):
        return {}


def _library_name(model_class: str) -> str:
    if model_class == "SentenceTransformer":
        return "sentence-transformers"
    if is_import_path(model_class):
        return "pytorch"  # a PyTorchModelHubMixin model of the user's own code
    return "transformers"


def _pipeline_tag(spec: dict[str, Any], class_name: str) -> str:
    if spec.get("task"):
        from tether.models.spec import resolve_task

        return resolve_task(spec["task"])[0]
    if spec.get("model_class") == "SentenceTransformer":
        return "sentence-similarity"
    return (
        task_for_class(class_name)
        or task_for_class(str(spec.get("model_class") or ""))
        or "feature-extraction"
    )


def _todo(what: str) -> str:
    return f"{TODO}: {what}"


def _body(bundle_dir: Path, manifest: Manifest, info: CardInfo, data: Any, name: str) -> str:
    report = inspect(str(bundle_dir))
    missing_meta = [
        f for f in ("license", "language", "datasets", "base_model") if not getattr(data, f)
    ]
    if not data.eval_results and not data.metrics:
        missing_meta.append("model-index (evaluation results)")
    parts = [f"# {name}", ""]
    parts.append(
        f"A `{manifest.class_name}` ({report.model_type or 'unknown type'}) saved as a tether "
        f"bundle from `{manifest.origin.get('source')}`. `tether verify` checks that it still "
        "produces the outputs it was saved with."
    )
    if missing_meta:
        parts += ["", f"> {_todo('fill in the YAML metadata: ' + ', '.join(missing_meta))}."]
    sections = {
        "How to load": _how_to_load(manifest, report),
        "Intended use": info.intended_use or _todo("what this model is for, and for whom."),
        "Out-of-scope use": info.out_of_scope_use
        or _todo("uses this model is not suited or not allowed for."),
        "Training data": _training_data(info.training_data, data),
        "Preprocessing": _preprocessing(info, manifest, report),
        "Architecture and hyperparameters": _architecture(info, manifest, report, bundle_dir),
        "Evaluation results": _evaluation(info),
        "Bias, risks and limitations": info.bias_risks_limitations
        or _todo("known biases, failure modes and risks, and how to mitigate them."),
        "Environment": _environment(manifest),
        "Examples and demos": info.examples
        or _todo("a worked example on real inputs, and links to demos or notebooks."),
        "Acknowledgments": info.acknowledgments
        or _todo("the base model's authors, data sources, compute and funding to credit."),
        "Contact": info.contact or _todo("who to contact about this model (name, email, team)."),
    }
    for title, text in sections.items():
        parts += ["", f"## {title}", "", text.strip()]
    return "\n".join(parts) + "\n"


def _how_to_load(manifest: Manifest, report: Any) -> str:
    spec = manifest.spec
    trust = bool(manifest.model_class.get("custom_code"))
    python_arg, flag = (", trust_remote_code=True", " --trust-remote-code") if trust else ("", "")
    lines = [
        "Load it through tether, which reads the exact spec from `tether.json` and refuses "
        "to load it any other way:",
        "",
        "```python",
        "import tether",
        "",
        f'loaded = tether.load_bundle("path/to/this/bundle"{python_arg})',
        "```",
        "",
        "Check it before use (exit code 0 when the files and outputs match):",
        "",
        "```bash",
        f"tether verify path/to/this/bundle{flag}",
        "```",
        "",
        "The exact spec (`source` is this directory; trust is never part of it: the "
        "person loading the bundle decides):",
        "",
        "```json",
        json.dumps(spec, indent=2, sort_keys=True),
        "```",
        "",
    ]
    if trust:
        files = "\n".join(f"- `{f.path}` sha256 `{f.sha256}`" for f in report.custom_code_files)
        lines += [
            f"**This model runs its own code** (`auto_map`: `{report.auto_map}`), so it must be "
            "loaded with `trust_remote_code=True`. Without it, transformers silently builds "
            "the built-in class instead, with different outputs. Review these files first:",
            "",
            files,
        ]
    else:
        lines.append("No custom code: `trust_remote_code` is not needed.")
    return "\n".join(lines)


def _training_data(td: TrainingData | None, data: Any) -> str:
    td = td or TrainingData()
    source = td.source or (", ".join(data.datasets) if data.datasets else None)
    rows = [
        f"- Source: {source or _todo('where the training data came from')}",
        f"- Licence: {td.license or _todo('the licence of the training data')}",
        f"- Size: {td.size if td.size is not None else _todo('number of examples')}",
    ]
    if isinstance(td.class_balance, dict) and td.class_balance:
        total = sum(td.class_balance.values()) or 1
        rows += ["- Class balance:", "", "| class | examples | share |", "| --- | ---: | ---: |"]
        rows += [
            f"| {label} | {count} | {count / total:.1%} |"
            for label, count in td.class_balance.items()
        ]
    else:
        rows.append(f"- Class balance: {td.class_balance or _todo('examples per class, if any')}")
    return "\n".join(rows)


def _preprocessing(info: CardInfo, manifest: Manifest, report: Any) -> str:
    spec = manifest.spec
    known = [
        f"Inputs are tokenized by the bundled tokenizer ({', '.join(report.tokenizer_files)})"
        + (f", truncated to {spec['max_length']} tokens" if spec.get("max_length") else "")
        + "."
        if report.tokenizer_files
        else "Inputs are tensors (the model has no tokenizer or processor); its fingerprint "
        "probes are seeded random tensors shaped for its first layer."
    ]
    st = report.sentence_transformers
    if st:
        known.append(
            f"Sentence embeddings: pooling `{st.pooling}`, normalize `{st.normalize}`, "
            f"max_seq_length {st.max_seq_length}."
        )
    known.append(
        info.preprocessing or _todo("how the training text was cleaned, filtered or split.")
    )
    return "\n\n".join(known)


def _architecture(info: CardInfo, manifest: Manifest, report: Any, bundle_dir: Path) -> str:
    config_path = bundle_dir / "config.json"
    config = read_json(config_path) if config_path.is_file() else {}
    keys = (
        "model_type",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "vocab_size",
        "max_position_embeddings",
        "n_embd",
        "n_layer",
        "n_head",
        "dim",
        "n_layers",
        "n_heads",
    )
    rows = ["| field | value |", "| --- | --- |", f"| class | `{manifest.class_name}` |"]
    if report.num_parameters is not None:
        rows.append(f"| parameters | {report.num_parameters:,} |")
    rows.append(f"| dtype | {manifest.spec.get('dtype')} |")
    rows += [f"| {k} | {config[k]} |" for k in keys if k in config]
    if report.labels:
        rows.append(f"| labels | {', '.join(report.labels)} |")
    hp = info.hyperparameters
    if isinstance(hp, dict) and hp:
        hp_text = "\n".join(f"- {k}: {v}" for k, v in hp.items())
    else:
        hp_text = str(hp) if hp else _todo("training hyperparameters (optimizer, lr, epochs).")
    return "\n".join(rows) + "\n\nTraining hyperparameters:\n\n" + hp_text


def _evaluation(info: CardInfo) -> str:
    lines: list[str] = []
    if info.eval_results:
        lines += ["| task | dataset | metric | value |", "| --- | --- | --- | ---: |"]
        lines += [
            f"| {r.get('task_type')} | {r.get('dataset_name')} | {r.get('metric_type')} | "
            f"{r.get('metric_value')} |"
            for r in info.eval_results
        ]
    if info.evaluation:
        lines += ["", info.evaluation]
    return "\n".join(lines) if lines else _todo("metrics on held-out data, and on which data.")


def _environment(manifest: Manifest) -> str:
    rows = ["| library | version |", "| --- | --- |"]
    rows += [f"| {k} | {v} |" for k, v in manifest.versions.items() if v]
    fp = manifest.fingerprint
    rows += [
        "",
        f"Fingerprint: outputs on {fp.get('texts', '?')} fixed probe texts, in "
        f"`{fp.get('file')}`, checked with atol {fp.get('atol')} and minimum cosine "
        f"{fp.get('min_cosine')}.",
    ]
    return "\n".join(rows)


# -- checking -----------------------------------------------------------------------------


@dataclass
class CardCheck:
    """How complete a model card is: each section and metadata field, and a score."""

    path: str
    sections: dict[str, str]  # section title -> "present" | "todo" | "missing"
    metadata: dict[str, bool]
    score: float
    min_score: float

    @property
    def ok(self) -> bool:
        return self.score >= self.min_score

    @property
    def missing(self) -> list[str]:
        """Everything that lowers the score, in reading order."""
        out = [f"section: {t} ({s})" for t, s in self.sections.items() if s != "present"]
        return out + [f"metadata: {k}" for k, present in self.metadata.items() if not present]

    def to_dict(self) -> dict[str, Any]:
        return dict(asdict(self), ok=self.ok, missing=self.missing)

    def format(self) -> str:
        lines = [
            f"{'OK' if self.ok else 'FAILED'}: {self.path} scores {self.score:.2f} "
            f"(minimum {self.min_score:.2f})"
        ]
        for title, status in self.sections.items():
            mark = "ok" if status == "present" else status.upper()
            lines.append(f"  section  {title:<34} {mark}")
        for key, present in self.metadata.items():
            lines.append(f"  metadata {key:<34} {'ok' if present else 'MISSING'}")
        return "\n".join(lines)


def check_card(path: str | Path, min_score: float = DEFAULT_MIN_SCORE) -> CardCheck:
    """Score the card at ``path`` (a README.md, or a directory holding one)."""
    from huggingface_hub import ModelCard

    path = Path(path)
    readme = path / "README.md" if path.is_dir() else path
    if not readme.is_file():
        raise CardError(
            f"No model card at {str(readme)!r}.",
            "Pass a README.md or a model directory that has one (`tether save` writes one).",
        )
    try:
        card = ModelCard.load(readme)
    except (ValueError, OSError) as exc:
        raise CardError(
            f"Could not parse the model card {str(readme)!r}: {exc}.",
            "Check the YAML metadata block between the leading '---' lines.",
        ) from exc
    meta = card.data.to_dict()
    metadata = {key: bool(meta.get(key)) for key in METADATA_FIELDS}
    metadata["model-index"] = bool(meta.get("model-index") or meta.get("metrics"))
    sections = section_status(card.text)
    present = sum(s == "present" for s in sections.values()) + sum(metadata.values())
    score = present / (len(sections) + len(metadata))
    return CardCheck(str(readme), sections, metadata, round(score, 4), min_score)


def section_status(markdown: str) -> dict[str, str]:
    """For each required section: present (with content), todo (only placeholders), missing."""
    status = {s.title: "missing" for s in SECTIONS}
    for heading, content in _sections(markdown):
        for section in SECTIONS:
            if section.matches(heading) and status[section.title] != "present":
                status[section.title] = "present" if _has_content(content) else "todo"
    return status


def _sections(markdown: str) -> list[tuple[str, str]]:
    """(heading, content including subsections) for every Markdown heading outside code."""
    lines = markdown.splitlines()
    headings: list[tuple[int, int, str]] = []  # (line index, level, text)
    in_code = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
            continue
        match = re.match(r"^(#{1,6})\s+(.+?)\s*#*\s*$", line)
        if match and not in_code:
            headings.append((i, len(match.group(1)), match.group(2)))
    out = []
    for n, (i, level, text) in enumerate(headings):
        end = next((j for j, lvl, _ in headings[n + 1 :] if lvl <= level), len(lines))
        out.append((text, "\n".join(lines[i + 1 : end])))
    return out


def _has_content(content: str) -> bool:
    """True when the text says something besides placeholders and comments."""
    text = re.sub(r"<!--.*?-->", "", content, flags=re.S)
    for line in text.splitlines():
        stripped = line.strip().strip("-*>|: ").lower()
        if not stripped or stripped.startswith("#"):
            continue
        if _PLACEHOLDER_RE.search(stripped):
            continue
        return True
    return False
