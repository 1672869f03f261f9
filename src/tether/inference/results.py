"""What a run returns: per record a prediction or an error row; per run, its counts."""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class RunSummary:
    """The counts of one run over a dataset, local (``run_file``) or a Beam job.

    Nothing is lost when ``records`` (read from the input) equals ``written`` plus
    ``errors``; ``balanced`` says so.
    """

    records: int = 0
    written: int = 0
    errors: int = 0
    truncated: int = 0
    #: Records that repeat an earlier record of their chunk exactly: run once, the outcome
    #: copied. Counted in ``records`` and ``written``; ``unique_rate`` leaves them out.
    duplicates: int = 0
    seconds: float = 0.0
    resumed_chunks: int = 0
    output: str = ""
    errors_path: str = ""
    state: str = ""  # a Beam job's final state ("DONE"), or its state when not waited for
    counters: dict[str, int] = field(default_factory=dict)  # a Beam job's metrics

    @property
    def balanced(self) -> bool:
        return self.records == self.written + self.errors

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def unique_rate(self) -> float:
        """Records per second that the model actually ran (duplicates left out)."""
        return (self.records - self.duplicates) / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        text = (
            f"records in: {self.records} = written {self.written} + errors {self.errors}"
            f"; truncated {self.truncated}; {self.rate:.1f} records/s"
        )
        if self.duplicates:
            text += (
                f"; {self.duplicates} exact duplicate(s) run once and copied "
                f"({self.unique_rate:.1f} unique records/s)"
            )
        if self.resumed_chunks:
            text += f"; resumed after {self.resumed_chunks} finished chunk(s)"
        return text
