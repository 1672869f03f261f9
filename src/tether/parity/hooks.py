"""Capture every submodule's output of a PyTorch model with forward hooks.

Parity compares two models module by module, so both sides need the same names:
names are taken from ``named_modules()``, the base-model prefix (``bert.`` in
``BertForMaskedLM``) is stripped so a head model lines up with its base model, and a
user mapping can rename the rest. Dropout and Identity modules are skipped: in eval
mode they return their input, so they only add noise to the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

_SKIPPED_TYPES: tuple[type[nn.Module], ...] = (nn.Dropout, nn.Identity)


def first_tensor(output: Any) -> torch.Tensor | None:
    """The tensor a module "returns": itself, or the first tensor of a tuple / ModelOutput."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):  # transformers' ModelOutput is an OrderedDict
        values = list(output.values())
    elif isinstance(output, (tuple, list)):
        values = list(output)
    else:
        return None
    for value in values:
        found = first_tensor(value)
        if found is not None:
            return found
    return None


def parse_mapping(pairs: Sequence[str] | Mapping[str, str] | None) -> list[tuple[str, str]]:
    """``["A_PREFIX=B_PREFIX", ...]`` or ``{A_PREFIX: B_PREFIX}`` -> pairs, longest B first.

    An item naming a ``.yaml``/``.yml``/``.json`` file reads ``{A_PREFIX: B_PREFIX}`` from it.
    """
    from tether.errors import ParityError

    if not pairs:
        return []
    items: list[tuple[str, str]] = []
    if isinstance(pairs, Mapping):
        items = [(str(a), str(b)) for a, b in pairs.items()]
    else:
        for pair in pairs:
            if pair.endswith((".yaml", ".yml", ".json")) and "=" not in pair:
                items += [(a.strip("."), b.strip(".")) for a, b in _read_map_file(pair).items()]
                continue
            if "=" not in pair:
                raise ParityError(
                    f"Module mapping {pair!r} has no '='.",
                    "Write it as A_PREFIX=B_PREFIX, e.g. mapping=['encoder.layer=transformer.h'] "
                    "(an empty side is allowed: mapping=['=model']).",
                )
            a, b = pair.split("=", 1)
            items.append((a.strip().strip("."), b.strip().strip(".")))
    return sorted(items, key=lambda ab: -len(ab[1]))


def _read_map_file(path: str) -> dict[str, str]:
    """``{A_PREFIX: B_PREFIX}`` from a YAML or JSON file (JSON is YAML too)."""
    from pathlib import Path

    import yaml

    from tether.errors import ParityError

    file = Path(path)
    if not file.is_file():
        raise ParityError(
            f"Name map file {path!r} does not exist.",
            "Pass mapping= a YAML/JSON file of {A_PREFIX: B_PREFIX}, or A_PREFIX=B_PREFIX pairs.",
        )
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParityError(f"Name map file {path!r} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(v, (str, type(None))) for v in data.values()
    ):
        raise ParityError(
            f"Name map file {path!r} must hold one mapping of strings, A_PREFIX: B_PREFIX.",
            'Write e.g. {"model.layers": "layers"}.',
        )
    return {str(a): str(b or "") for a, b in data.items()}


def map_name(name: str, mapping: Sequence[tuple[str, str]]) -> str:
    """Rename a B-side module name into A's namespace with the first matching prefix."""
    for a_prefix, b_prefix in mapping:
        if not b_prefix:
            rest = name
        elif name == b_prefix:
            rest = ""
        elif name.startswith(b_prefix + "."):
            rest = name[len(b_prefix) + 1 :]
        else:
            continue
        return f"{a_prefix}.{rest}" if a_prefix and rest else a_prefix or rest
    return name


def comparable_modules(
    model: nn.Module, mapping: Sequence[tuple[str, str]] = ()
) -> dict[str, nn.Module]:
    """Normalised name -> module, for every submodule worth comparing."""
    prefix = getattr(model, "base_model_prefix", "") or ""
    has_base = bool(prefix) and isinstance(getattr(model, prefix, None), nn.Module)
    out: dict[str, nn.Module] = {}
    for name, module in model.named_modules():
        if not name or isinstance(module, _SKIPPED_TYPES):
            continue
        if has_base and (name == prefix or name.startswith(prefix + ".")):
            name = name[len(prefix) + 1 :]
            if not name:
                continue
        out.setdefault(map_name(name, mapping), module)
    return out


@contextmanager
def capture(
    modules: Mapping[str, nn.Module], on_output: Callable[[str, torch.Tensor], None]
) -> Iterator[Callable[[], None]]:
    """Hook every module; call ``on_output(name, tensor)`` once per module per forward.

    Yields ``reset``: call it before each forward so a module that runs twice (shared
    weights) reports its first call of that forward only.
    """
    seen: set[str] = set()

    def make_hook(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if name in seen:
                return
            tensor = first_tensor(output)
            if tensor is not None and tensor.is_floating_point():
                seen.add(name)
                on_output(name, tensor.detach())

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in modules.items()]
    try:
        yield seen.clear
    finally:
        for handle in handles:
            handle.remove()


def layer_list_name(modules: Mapping[str, nn.Module]) -> str | None:
    """The ModuleList holding the repeated layers: most children, all of one class."""
    best: tuple[int, str] | None = None
    for name, module in modules.items():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            kinds = {type(child) for child in module}
            if len(kinds) == 1 and (best is None or len(module) > best[0]):
                best = (len(module), name)
    return best[1] if best else None


def block_names(modules: Mapping[str, nn.Module]) -> set[str]:
    """The rows worth a table: embeddings and heads, each layer, and each layer's blocks.

    Around the layer list (e.g. ``encoder.layer``) these are the siblings of its
    ancestors (``embeddings``, ``pooler``, ``cls``); inside it each layer (``encoder.layer.3``)
    and its direct children (``attention``, ``intermediate``, ``output``).
    """
    layers = layer_list_name(modules)
    if layers is None:
        return {n for n in modules if n.count(".") <= 1}
    parts = layers.split(".")
    ancestors = {".".join(parts[:i]) for i in range(len(parts))}
    blocks: set[str] = set()
    for name in modules:
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        if name in ancestors or name == layers:
            continue
        if parent in ancestors:
            blocks.add(name)
        elif name.startswith(layers + "."):
            depth = name[len(layers) + 1 :].count(".")
            if depth <= 1:
                blocks.add(name)
    return blocks
