"""A model argument as users pass it (a source, a ModelSpec, or a loaded model) made
into a LoadedModel through the same guarded ``load`` as everywhere else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tether.models.inspection import inspect
from tether.models.loading import LoadedModel, load
from tether.models.spec import ModelSpec


def embedding_spec(model: str | ModelSpec) -> ModelSpec:
    """A ModelSpec as given; a ``.json`` file as a saved spec; any other string as a source
    loaded as the checkpoint's own class (what ``tether embed`` does): embeddings read
    the base model, so a checkpoint with a head drops nothing."""
    if isinstance(model, ModelSpec):
        return model
    if model.endswith(".json") and Path(model).is_file():
        return ModelSpec.load_file(model)
    return ModelSpec(model, model_class=inspect(model).suggested_class)


def loaded_model(model: Any) -> LoadedModel:
    if isinstance(model, LoadedModel):
        return model
    return load(embedding_spec(model))


def model_name(model: Any) -> str:
    if isinstance(model, LoadedModel):
        return model.model_id or str(model.path)
    if isinstance(model, ModelSpec):
        return model.source
    return str(model)
