"""tether: run Hugging Face models over data, and keep them exactly the models you tested.

The public surface is listed in ``__all__``; everything else may move.
"""

from __future__ import annotations

from tether.errors import (
    InputError,
    LoadGuardError,
    MissingExtraError,
    SourceNotFoundError,
    SpecError,
    TetherError,
    TokenizerError,
    UnsafeWeightsError,
    UntrustedCustomCodeError,
    WeightMismatchError,
)
from tether.inspection import ModelReport, inspect
from tether.loading import LoadedModel, load
from tether.spec import ModelSpec

__version__ = "0.1.0"

__all__ = [
    "InputError",
    "LoadGuardError",
    "LoadedModel",
    "MissingExtraError",
    "ModelReport",
    "ModelSpec",
    "SourceNotFoundError",
    "SpecError",
    "TetherError",
    "TokenizerError",
    "UnsafeWeightsError",
    "UntrustedCustomCodeError",
    "WeightMismatchError",
    "__version__",
    "inspect",
    "load",
]
