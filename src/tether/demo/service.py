"""What the demo answers for one text, whatever the page around it: the task's output as
Markdown. Kept free of gradio so it is tested directly and reused by an exported Space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tether.errors import InputError, TaskError
from tether.inference.engine import Engine
from tether.inference.results import RecordError
from tether.models.loading import LoadedModel

DEMO_TASKS = ("embed", "classify", "fill-mask")
TOP_K = 5


def task_for(loaded: LoadedModel) -> str:
    """The task a checkpoint's own head serves: a classifier classifies, a masked LM fills
    masks, anything else embeds."""
    name = type(loaded.model).__name__
    if name.endswith("ForSequenceClassification"):
        return "classify"
    if name.endswith("ForMaskedLM"):
        return "fill-mask"
    return "embed"


@dataclass
class Corpus:
    """Texts to search (embedding models): their vectors from the same model, row by row."""

    texts: list[str]
    vectors: Any  # (n, dim) float32

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.vectors):
            raise InputError(
                f"The corpus has {len(self.texts)} texts but {len(self.vectors)} vectors.",
                "Pass the vectors of exactly these texts.",
            )


class DemoService:
    """One loaded model answering one text at a time."""

    def __init__(
        self,
        loaded: LoadedModel,
        task: str | None = None,
        corpus: Corpus | None = None,
        top_k: int = TOP_K,
    ) -> None:
        self.task = task or task_for(loaded)
        if self.task not in DEMO_TASKS:
            raise TaskError(
                f"The demo shows {', '.join(DEMO_TASKS)}, not {self.task!r}.",
                f"Pass task= one of {', '.join(DEMO_TASKS)}.",
            )
        if corpus is not None and self.task != "embed":
            raise TaskError(
                f"A corpus to search needs an embedding model; this one runs {self.task}.",
                "Drop the corpus, or use an embedding model.",
            )
        options = {"top_k": top_k} if self.task == "fill-mask" else {}
        self.engine = Engine(loaded, self.task, **options)
        self.model_id = loaded.model_id or str(loaded.path)
        self.corpus = corpus
        self.top_k = top_k
        self._unit = None
        if corpus is not None and len(corpus.texts):
            import numpy as np

            vectors = np.asarray(corpus.vectors, dtype=np.float32)
            self._unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    @property
    def mask_token(self) -> str | None:
        return getattr(self.engine.task, "mask_token", None)

    def respond(self, text: str) -> str:
        """The model's answer for ``text`` as Markdown; a bad text is an error line."""
        [outcome] = self.engine.predict([text])
        if isinstance(outcome, RecordError):
            return f"**error** ({outcome.kind}): {outcome.reason}"
        if self.task == "classify":
            return _classification(outcome.inference)
        if self.task == "fill-mask":
            return _fill_mask(outcome.inference)
        return self._embedding(outcome.inference)

    def _embedding(self, vector: Any) -> str:
        import numpy as np

        vector = np.asarray(vector, dtype=np.float32)
        if self._unit is None or self.corpus is None:
            head = ", ".join(f"{v:.4f}" for v in vector[:8])
            return (
                f"**embedding**: {len(vector)} dimensions, norm {np.linalg.norm(vector):.4f}\n\n"
                f"first values: [{head}, …]"
            )
        query = vector / max(float(np.linalg.norm(vector)), 1e-12)
        sims = self._unit @ query
        order = np.argsort(-sims, kind="stable")[: self.top_k]
        lines = [f"**nearest {len(order)} of {len(self.corpus.texts)}** (cosine similarity):", ""]
        lines += [
            f"{n}. ({sims[i]:.3f}) {_one_line(self.corpus.texts[i])}"
            for n, i in enumerate(order, start=1)
        ]
        return "\n".join(lines)


def _classification(result: dict[str, Any]) -> str:
    ranked = sorted(result["scores"].items(), key=lambda kv: -kv[1])
    lines = [f"**label: {result['label']}** ({result['score']:.3f})", ""]
    lines += [f"- {label}: {score:.3f}" for label, score in ranked]
    return "\n".join(lines)


def _fill_mask(masks: list[list[dict[str, Any]]]) -> str:
    lines = []
    for n, candidates in enumerate(masks, start=1):
        lines.append(f"**mask {n}**:" if len(masks) > 1 else "**candidates**:")
        lines += [f"- {c['token_str']} ({c['score']:.3f})" for c in candidates]
    return "\n".join(lines)


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
