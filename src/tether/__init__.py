"""tether: run Hugging Face models over data, and keep them exactly the models you tested.

The public surface is listed in ``__all__``; everything else may move.
"""

from __future__ import annotations

from tether.bundle import VerificationReport, bundle_spec, load_bundle, save, verify
from tether.card import CardCheck, CardInfo, TrainingData, check_card
from tether.compare import ParityReport, compare
from tether.errors import (
    BundleClassMismatchError,
    BundleError,
    CardError,
    FingerprintError,
    IncompleteBundleError,
    InputError,
    LoadGuardError,
    MissingExtraError,
    ParityError,
    ParityMismatchError,
    SourceNotFoundError,
    SpecError,
    TetherError,
    TokenizerError,
    UnsafeWeightsError,
    UntrustedCustomCodeError,
    VerificationError,
    WeightMismatchError,
)
from tether.fingerprint import Tolerance
from tether.inspection import ModelReport, inspect
from tether.loading import LoadedModel, load
from tether.spec import ModelSpec
from tether.tolerances import ParityTolerance

__version__ = "0.1.0"

__all__ = [
    "BundleClassMismatchError",
    "BundleError",
    "CardCheck",
    "CardError",
    "CardInfo",
    "FingerprintError",
    "IncompleteBundleError",
    "InputError",
    "LoadGuardError",
    "LoadedModel",
    "MissingExtraError",
    "ModelReport",
    "ModelSpec",
    "ParityError",
    "ParityMismatchError",
    "ParityReport",
    "ParityTolerance",
    "SourceNotFoundError",
    "SpecError",
    "TetherError",
    "TokenizerError",
    "Tolerance",
    "TrainingData",
    "UnsafeWeightsError",
    "UntrustedCustomCodeError",
    "VerificationError",
    "VerificationReport",
    "WeightMismatchError",
    "__version__",
    "bundle_spec",
    "check_card",
    "compare",
    "inspect",
    "load",
    "load_bundle",
    "save",
    "verify",
]
