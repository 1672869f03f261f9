"""Fixed probe inputs and a model's raw outputs on them.

Bundles store these outputs as a fingerprint; parity checks compare them. Both need
the same probes and the same way of reading a model, so it lives here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Varied, deterministic texts: short, long, punctuation, digits, non-ASCII, repeats.
PROBE_TEXTS: tuple[str, ...] = (
    "Hello world.",
    "The quick brown fox jumps over the lazy dog.",
    "A model that needs its own code must be trusted explicitly, or it changes silently.",
    "Numbers: 3.14159, 42, 1e-4 and 2026-11-24.",
    "Ünïcödé tëxt, emoji 🙂 and CJK 模型.",
    "short",
    "Paris is the capital of France. Berlin is the capital of Germany. "
    "Madrid is the capital of Spain. Rome is the capital of Italy.",
    "good great excellent happy",
    "bad awful terrible sad",
    "tether keeps the model you run exactly the model you tested " * 6,
    "What is the boiling point of water at sea level?",
    "def add(a, b):\n    return a + b",
)


def probe_outputs(loaded: Any, texts: Sequence[str] | None = None) -> dict[str, Any]:
    """Run ``loaded`` (a tether LoadedModel) on probe texts; return float32 CPU tensors.

    Keys are the tensor fields of the model's output (``last_hidden_state``,
    ``logits``, ``pooler_output``, ``sentence_embedding``...) plus ``attention_mask``.
    Padding positions are zeroed so that only real tokens are compared.
    """
    import torch

    texts = list(texts or PROBE_TEXTS)
    model = loaded.model
    tokenizer = loaded.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(
        texts, padding=True, truncation=True, max_length=loaded.max_length, return_tensors="pt"
    )
    batch = {k: v.to(loaded.device) for k, v in batch.items()}
    with torch.inference_mode():
        if loaded.spec.is_sentence_transformers:
            raw = model(dict(batch))
            items = {k: v for k, v in raw.items() if k == "sentence_embedding"}
        else:
            accepted = _accepted_inputs(model)
            raw = model(**{k: v for k, v in batch.items() if k in accepted})
            items = {k: v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    mask = batch["attention_mask"].cpu()
    out: dict[str, Any] = {"attention_mask": mask}
    for name, value in items.items():
        tensor = value.detach().float().cpu()
        if tensor.dim() >= 2 and tensor.shape[:2] == mask.shape:
            tensor = tensor * mask.reshape(*mask.shape, *([1] * (tensor.dim() - 2)))
        out[name] = tensor.contiguous()
    return out


def _accepted_inputs(model: Any) -> set[str]:
    import inspect

    params = inspect.signature(model.forward).parameters
    names = set(params)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        names |= {"input_ids", "attention_mask", "token_type_ids"}
    return names
