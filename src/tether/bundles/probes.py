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


#: Names of the generated probes for models that take images or audio, not text (no
#: tokenizer, an image processor or feature extractor). The media are made from a fixed
#: seed, so a fingerprint stores only these names.
PROBE_IMAGES: tuple[str, ...] = tuple(f"<image probe {i}>" for i in range(4))
PROBE_AUDIO: tuple[str, ...] = tuple(f"<audio probe {i}>" for i in range(3))
#: Probes for models that take tensors (a PyTorchModelHubMixin ``nn.Module``, no
#: tokenizer or processor): seeded random inputs shaped for the model's first layer.
PROBE_TENSORS: tuple[str, ...] = tuple(f"<tensor probe {i}>" for i in range(8))


def default_probes(loaded: Any) -> tuple[str, ...]:
    """The probe names that suit ``loaded``: texts, images, audio clips or tensors."""
    if loaded.tokenizer is not None:
        return PROBE_TEXTS
    if loaded.processor is None:
        return PROBE_TENSORS
    if hasattr(loaded.processor, "sampling_rate"):
        return PROBE_AUDIO
    return PROBE_IMAGES


def given_probe_names(count: int) -> tuple[str, ...]:
    """Names of probe tensors the user gave (stored in the fingerprint itself)."""
    return tuple(f"<given probe {i}>" for i in range(count))


def probe_tensors(model: Any, count: int) -> Any:
    """Deterministic inputs for a tensor model, shaped by its first layer with weights
    (whose sizes the model's config set): ids for an Embedding, (N, in_features) for a
    Linear, (N, C, ...) for a convolution. Same seed, same inputs, on any machine."""
    import torch
    from torch import nn

    from tether.errors import FingerprintError

    first = next(
        (
            m
            for m in model.modules()
            if not list(m.children()) and any(True for _ in m.parameters(recurse=False))
        ),
        None,
    )
    generator = torch.Generator().manual_seed(20261127)
    dtype = next(model.parameters()).dtype if first is not None else torch.float32
    if isinstance(first, nn.Embedding):
        return torch.randint(0, first.num_embeddings, (count, 16), generator=generator)
    if isinstance(first, nn.Linear):
        return torch.randn(count, first.in_features, generator=generator).to(dtype)
    if isinstance(first, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        spatial = {1: (32,), 2: (32, 32), 3: (8, 16, 16)}[first.weight.dim() - 2]
        return torch.randn(count, first.in_channels, *spatial, generator=generator).to(dtype)
    raise FingerprintError(
        f"Cannot build tensor probes for {type(model).__name__}: its first layer is "
        f"{type(first).__name__ if first is not None else 'absent'}, not an Embedding, "
        "Linear or convolution whose sizes say what the input looks like.",
        "Save a model whose first layer is one of those, or give it a tokenizer.",
    )


def probe_images(count: int) -> list[Any]:
    """Deterministic RGB images (uint8, H x W x 3) of varied sizes and content."""
    import numpy as np

    generator = np.random.default_rng(20261125)
    sizes = [(40, 40), (64, 48), (31, 57), (96, 96)]
    images = []
    for i in range(count):
        height, width = sizes[i % len(sizes)]
        gradient = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
        noise = generator.integers(0, 64, (height, width, 3)).astype(np.float32)
        images.append(np.clip(gradient * (i + 1) / count + noise, 0, 255).astype(np.uint8))
    return images


def probe_audio(count: int, sampling_rate: int) -> list[Any]:
    """Deterministic mono clips (float32): tones plus noise, 0.25 to 1 second long."""
    import numpy as np

    generator = np.random.default_rng(20261126)
    clips = []
    for i in range(count):
        n = int(sampling_rate * (0.25 + 0.375 * i))
        t = np.arange(n, dtype=np.float32) / sampling_rate
        tone = 0.4 * np.sin(2 * np.pi * (220.0 * (i + 1)) * t)
        clips.append((tone + 0.05 * generator.standard_normal(n)).astype(np.float32))
    return clips


def probe_outputs(
    loaded: Any, texts: Sequence[str] | None = None, inputs: Any = None
) -> dict[str, Any]:
    """Run ``loaded`` (a tether LoadedModel) on probes; return float32 CPU tensors.

    ``texts`` are probe texts, or the names in PROBE_IMAGES / PROBE_AUDIO for models
    that take media (default: ``default_probes(loaded)``). Keys are the tensor fields
    of the model's output (``last_hidden_state``, ``logits``, ``pooler_output``,
    ``sentence_embedding``...) plus ``attention_mask`` for text. Padding positions are
    zeroed so that only real tokens are compared.
    """
    import torch

    if inputs is not None:
        return _tensor_outputs(loaded, inputs)
    texts = list(texts or default_probes(loaded))
    if set(texts) <= set(PROBE_TENSORS):
        generated = probe_tensors(loaded.model, len(PROBE_TENSORS))
        return _tensor_outputs(loaded, generated[[PROBE_TENSORS.index(n) for n in texts]])
    if set(texts) <= set(PROBE_IMAGES) | set(PROBE_AUDIO):
        return _media_outputs(loaded, texts)
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


def _media_outputs(loaded: Any, names: list[str]) -> dict[str, Any]:
    import torch

    processor = loaded.processor
    if names[0] in PROBE_AUDIO:
        rate = int(processor.sampling_rate)
        clips = probe_audio(len(PROBE_AUDIO), rate)
        chosen = [clips[PROBE_AUDIO.index(n)] for n in names]
        batch = processor(chosen, sampling_rate=rate, padding=True, return_tensors="pt")
    else:
        images = probe_images(len(PROBE_IMAGES))
        batch = processor(
            images=[images[PROBE_IMAGES.index(n)] for n in names], return_tensors="pt"
        )
    accepted = _accepted_inputs(loaded.model)
    inputs = {k: v.to(loaded.device) for k, v in batch.items() if k in accepted}
    with torch.inference_mode():
        raw = loaded.model(**inputs)
    items = raw.items() if hasattr(raw, "items") else []
    return {
        k: v.detach().float().cpu().contiguous() for k, v in items if isinstance(v, torch.Tensor)
    }


def _tensor_outputs(loaded: Any, batch: Any) -> dict[str, Any]:
    """Outputs of a tensor model on a batch of probes: ``output`` for a tensor,
    ``output_0``... for a tuple, the tensor fields of a dict or ModelOutput."""
    import torch

    with torch.inference_mode():
        raw = loaded.model(batch.to(loaded.device))
    if isinstance(raw, torch.Tensor):
        items: dict[str, Any] = {"output": raw}
    elif isinstance(raw, tuple | list):
        items = {f"output_{i}": v for i, v in enumerate(raw)}
    else:
        items = dict(raw.items()) if hasattr(raw, "items") else {}
    return {
        k: v.detach().float().cpu().contiguous()
        for k, v in items.items()
        if isinstance(v, torch.Tensor)
    }


def _accepted_inputs(model: Any) -> set[str]:
    import inspect

    params = inspect.signature(model.forward).parameters
    names = set(params)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        names |= {"input_ids", "attention_mask", "token_type_ids"}
    return names
