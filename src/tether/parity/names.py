"""Pair a port's named intermediate arrays with PyTorch module names.

A JAX/Flax or NumPy port names its intermediates its own way: Flax paths such as
``layers_0/self_attn`` (``capture_intermediates``, ``sow``), or whatever keys a NumPy
function returns. The default map turns ``/`` into ``.`` and a numbered list item
``layers_0`` into ``layers.0``, so ``layers_0/mlp`` meets ``layers.0.mlp`` (and, when A
has a prefix such as ``model.``, the one A module whose name ends with it). A user map
(``A_PREFIX=B_PREFIX`` pairs, a dict, or a YAML/JSON file of ``{A_PREFIX: B_PREFIX}``)
renames what the default cannot guess; its B side may be written either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from tether.parity.hooks import map_name

_NUMBERED = re.compile(r"_(\d+)(?=\.|$)")


def normalise(name: str) -> str:
    """``layers_0/mlp`` -> ``layers.0.mlp``; ``model.layers.0.mlp`` stays as it is."""
    return _NUMBERED.sub(r".\1", name.replace("/", ".")).strip(".")


def pair_intermediates(
    names_b: Iterable[str], names_a: Iterable[str], mapping: Sequence[tuple[str, str]] = ()
) -> dict[str, str]:
    """B's intermediate name -> A's module name, for every B name that finds a partner."""
    known_a = list(names_a)
    exact = set(known_a)
    normalised_map = [(a, normalise(b)) for a, b in mapping]
    by_suffix: dict[str, list[str]] = {}
    for name in known_a:
        parts = name.split(".")
        for i in range(1, len(parts)):
            by_suffix.setdefault(".".join(parts[i:]), []).append(name)
    out: dict[str, str] = {}
    taken: set[str] = set()
    for raw in names_b:
        name = map_name(normalise(raw), normalised_map)
        if name not in exact:
            candidates = by_suffix.get(name, [])
            if len(candidates) != 1:
                continue
            name = candidates[0]
        if name not in taken:
            out[raw] = name
            taken.add(name)
    return out
