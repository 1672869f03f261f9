"""An engine over an optimised bundle: run its graph (or, for ``bf16``, its own weights
under autocast), and re-verify it on a new machine.

``load()`` of an optimised bundle records its evidence on the LoadedModel (the graph's
hash is checked with every other file). The engine then runs the graph for the task it
was verified for (other tasks run the bundle's original weights). Before first use on a
machine whose CPU features or runtime version differ from the evidence, it runs the
stored reference texts through the whole engine and refuses unless every text still
meets the level's tolerance against the original model's stored outputs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from tether.bundles.optimized import (
    OPENVINO_RUNTIME,
    Evidence,
    VectorCheck,
    check_vectors,
    load_reference,
    machine_changes,
    machine_record,
)
from tether.errors import OptimizationError, OptimizationMismatchError
from tether.inference.backends import AutocastBackend, OnnxBackend, OpenVinoBackend
from tether.inference.results import Outcome, RecordError

if TYPE_CHECKING:
    from tether.inference.engine import Engine

logger = logging.getLogger(__name__)


def attach_optimized(engine: Engine) -> VectorCheck | None:
    """Give ``engine`` the optimised graph of its model, if it has one for its task.

    Returns the re-verification's figures when the machine differs from the evidence's
    (None when it is the same machine record, or the graph is not for this task).
    Raises OptimizationMismatchError when re-verification fails.
    """
    loaded = engine.loaded
    evidence = Evidence.from_dict(loaded.optimized, str(loaded.path))
    if evidence.task != engine.task.name:
        return None
    backend: AutocastBackend | OnnxBackend | OpenVinoBackend
    if evidence.autocast is not None:
        backend = AutocastBackend.for_task(engine.task, evidence.autocast)
    else:
        assert evidence.graph is not None
        graph = loaded.path / evidence.graph
        if evidence.runtime == OPENVINO_RUNTIME:
            backend = OpenVinoBackend(graph, precision=evidence.precision or "f32")
        else:
            backend = OnnxBackend(graph)
    engine.task.attach(backend)
    engine.backend_name = f"{backend.name} ({evidence.level})"
    recorded = evidence.machine_record
    changes = machine_changes(recorded, machine_record(recorded.runtime))
    if not changes:
        return None
    return reverify(engine, evidence, changes)


def reverify(engine: Engine, evidence: Evidence, changes: list[str]) -> VectorCheck:
    """Run the stored reference texts through ``engine`` and check them against the
    original model's stored outputs, under the evidence's tolerance."""
    loaded = engine.loaded
    reference = load_reference(loaded.path / evidence.reference)
    saved = engine.stats.copy()
    outcomes = engine.predict(reference.texts)
    engine.stats = saved  # a check, not records of the user's run
    vectors = task_vectors(outcomes)
    check = check_vectors(reference.expected, vectors, evidence.limits)
    where = "; ".join(changes)
    if not check.passed:
        raise OptimizationMismatchError(
            f"The optimised bundle {str(loaded.path)!r} was verified on another machine "
            f"({where}) and no longer passes its {evidence.level!r} tolerance here on its "
            f"{check.texts} stored texts: " + "; ".join(check.failures) + ".",
            "Run the original model (tether.load of the source), or re-create the optimised "
            "bundle on this machine with `tether optimize`.",
            level=evidence.level,
            min_cosine=check.min_cosine,
            max_abs_diff=check.max_abs_diff,
            path=str(loaded.path),
        )
    logger.warning(
        "optimised bundle %s re-verified on this machine (%s): %d texts, min cosine %.6f, "
        "max abs diff %.3g",
        loaded.path,
        where,
        check.texts,
        check.min_cosine,
        check.max_abs_diff,
    )
    return check


def task_vectors(outcomes: list[Outcome]) -> Any:
    """(texts, dim) float32 array of task outputs: embeddings, or class scores in label
    order. A record error here means the reference no longer runs: that is a failure."""
    import numpy as np

    rows = []
    for outcome in outcomes:
        if isinstance(outcome, RecordError):
            raise OptimizationError(
                f"A stored reference text failed to run: {outcome.reason}.",
                "Re-create the optimised bundle with `tether optimize`.",
            )
        value = outcome.inference
        if isinstance(value, dict):
            value = list(value["scores"].values())
        rows.append(np.asarray(value, dtype=np.float32))
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
