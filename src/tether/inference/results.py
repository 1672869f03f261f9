"""What the engine returns per input record: a prediction or an error row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


class Prediction(NamedTuple):
    """One model output, shaped like Beam's ``PredictionResult`` (example, inference, model_id)."""

    example: Any
    inference: Any
    model_id: str | None = None


@dataclass(frozen=True)
class RecordError:
    """A record the model could not run on, and why. Never silently dropped."""

    example: Any
    reason: str
    kind: str  # "empty", "not-text", "bad-input", "model-error", ...


Outcome = Prediction | RecordError
