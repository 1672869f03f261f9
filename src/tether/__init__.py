"""tether: run Hugging Face models over data, and keep them exactly the models you tested.

The public surface is listed in ``__all__``; everything else may move. Names are
imported on first use (as huggingface_hub does), so ``import tether`` and
``tether --help`` stay fast and do not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tether.errors import (
    BundleClassMismatchError,
    BundleError,
    CardError,
    DeviceUnavailableError,
    FailedRecordsError,
    FingerprintError,
    HubAuthError,
    HubError,
    HubIntegrityError,
    HubNotFoundError,
    IncompleteBundleError,
    InputError,
    LoadGuardError,
    MissingExtraError,
    ModelLoadError,
    OptimizationError,
    OptimizationMismatchError,
    OutputError,
    ParityError,
    ParityMismatchError,
    SourceNotFoundError,
    SpecError,
    TaskError,
    TetherError,
    TokenizerError,
    UnsafeWeightsError,
    UntrustedCustomCodeError,
    VerificationError,
    WeightMismatchError,
)

__version__ = "0.1.0"

#: public name -> the module that defines it, imported on first access.
_LAZY = {
    "CardCheck": "tether.bundles.card",
    "CardInfo": "tether.bundles.card",
    "TrainingData": "tether.bundles.card",
    "check_card": "tether.bundles.card",
    "load_bundle": "tether.bundles.save",
    "save": "tether.bundles.save",
    "VerificationReport": "tether.bundles.verify",
    "verify": "tether.bundles.verify",
    "ModelReport": "tether.models.inspection",
    "inspect": "tether.models.inspection",
    "LoadedModel": "tether.models.loading",
    "load": "tether.models.loading",
    "ClusterResult": "tether.explore.cluster",
    "cluster": "tether.explore.cluster",
    "ModelsComparison": "tether.explore.compare_models",
    "compare_models": "tether.explore.compare_models",
    "bundle_spec": "tether.models.manifest",
    "ModelSpec": "tether.models.spec",
    "Int8Scheme": "tether.inference.graphs.int8",
    "Embeddings": "tether.inference.outputs",
    "FailedRecord": "tether.inference.outputs",
    "Model": "tether.face",
    "Outputs": "tether.inference.outputs",
    "embed": "tether.face",
    "Records": "tether.inference.records",
    "OptimizeResult": "tether.optimization.build",
    "optimize": "tether.optimization.build",
    "PullResult": "tether.hub.pull",
    "pull": "tether.hub.pull",
    "PushResult": "tether.hub.push",
    "push": "tether.hub.push",
    "ParityReport": "tether.parity.compare",
    "compare": "tether.parity.compare",
    "Tolerance": "tether.tolerances",
    "Verdict": "tether.judging",
    "judge": "tether.judging",
}

if TYPE_CHECKING:
    from tether.bundles.card import CardCheck, CardInfo, TrainingData, check_card
    from tether.bundles.save import load_bundle, save
    from tether.bundles.verify import VerificationReport, verify
    from tether.explore.cluster import ClusterResult, cluster
    from tether.explore.compare_models import ModelsComparison, compare_models
    from tether.face import Model, embed
    from tether.hub.pull import PullResult, pull
    from tether.hub.push import PushResult, push
    from tether.inference.graphs.int8 import Int8Scheme
    from tether.inference.outputs import Embeddings, FailedRecord, Outputs
    from tether.inference.records import Records
    from tether.judging import Verdict, judge
    from tether.models.inspection import ModelReport, inspect
    from tether.models.loading import LoadedModel, load
    from tether.models.manifest import bundle_spec
    from tether.models.spec import ModelSpec
    from tether.optimization.build import OptimizeResult, optimize
    from tether.parity.compare import ParityReport, compare
    from tether.tolerances import Tolerance


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tether' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BundleClassMismatchError",
    "BundleError",
    "CardCheck",
    "CardError",
    "CardInfo",
    "ClusterResult",
    "DeviceUnavailableError",
    "Embeddings",
    "FailedRecord",
    "FailedRecordsError",
    "FingerprintError",
    "HubAuthError",
    "HubError",
    "HubIntegrityError",
    "HubNotFoundError",
    "IncompleteBundleError",
    "InputError",
    "Int8Scheme",
    "LoadGuardError",
    "LoadedModel",
    "MissingExtraError",
    "Model",
    "ModelLoadError",
    "ModelReport",
    "ModelSpec",
    "ModelsComparison",
    "OptimizationError",
    "OptimizationMismatchError",
    "OptimizeResult",
    "OutputError",
    "Outputs",
    "ParityError",
    "ParityMismatchError",
    "ParityReport",
    "PullResult",
    "PushResult",
    "Records",
    "SourceNotFoundError",
    "SpecError",
    "TaskError",
    "TetherError",
    "TokenizerError",
    "Tolerance",
    "TrainingData",
    "UnsafeWeightsError",
    "UntrustedCustomCodeError",
    "Verdict",
    "VerificationError",
    "VerificationReport",
    "WeightMismatchError",
    "__version__",
    "bundle_spec",
    "check_card",
    "cluster",
    "compare",
    "compare_models",
    "embed",
    "inspect",
    "judge",
    "load",
    "load_bundle",
    "optimize",
    "pull",
    "push",
    "save",
    "verify",
]
