"""Which runtime runs an optimised level on this machine: measured, not guessed.

A built level can run on more than one runtime (``runtime_candidates``): a float32 or
static-int8 graph on ONNX Runtime or on OpenVINO (a static int8 one with float32 or
bfloat16 arithmetic around its int8 products), the ``bf16`` level under torch
autocast or as a float32 graph with OpenVINO's bfloat16 products. Which is faster
depends on the CPU (AMX, AVX-512 BF16, VNNI) and on the runtimes' versions, so
``rank_runtimes`` measures every candidate on this machine, on the user's texts through
the engine, and orders them:

1. each candidate is judged first, on up to ``JUDGE_TEXTS`` of the build's texts, by the
   level's tolerance; one that fails is recorded with its failures and not timed;
2. the passing ones are raced: ``RACE_ROUNDS`` interleaved rounds over the same texts,
   the best round of each kept (a burst of other load on a shared machine slows one
   round, not the figure);
3. fastest first. ``optimize`` then verifies them in that order (the whole verification
   every bundle gets) and keeps the first that passes.

Every figure lands in the evidence's ``build.runtime`` section, with the runtimes that
were not installed and how to add them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tether.bundles.optimized import check_vectors
from tether.errors import MissingExtraError, OptimizationError, SpecError, TaskError
from tether.inference.backends import OpenVinoBackend
from tether.inference.engine import Engine
from tether.inference.graphs.subjects import (
    RUNTIMES,
    Built,
    OpenVinoGraph,
    Subject,
    backend_for,
    runtime_candidates,
    runtime_of,
)
from tether.inference.optimized import task_vectors
from tether.models.loading import LoadedModel
from tether.tolerances import Tolerance

#: What ``runtime=`` accepts: ``auto`` (measure every installed runtime), or one of them.
RUNTIME_CHOICES = ("auto", *RUNTIMES)
#: Texts each candidate is judged on before it is timed (the probes first).
JUDGE_TEXTS = 256
#: Interleaved timed rounds (the best of each candidate kept) and texts per round.
RACE_ROUNDS = 3
RACE_TEXTS = 256


@dataclass
class Ranking:
    """The candidates that passed, fastest first, and the evidence's record of all."""

    subjects: list[Subject]
    record: dict[str, Any]  # build.runtime: candidates with rates, cosines, skips
    #: when none passed the judge, the first candidate it ran: what verification then
    #: runs to refuse with its figures (a named runtime's own, not another runtime's)
    fallback: Subject | None = None

    def chosen(self, subject: Subject) -> dict[str, Any]:
        """The record with ``subject`` as the runtime chosen."""
        return {**self.record, "chosen": runtime_of(subject), **_precision(subject)}


def check_runtime(runtime: str) -> None:
    """Refuse a ``runtime=`` that is not one of ``RUNTIME_CHOICES`` (``optimize`` checks
    it before anything loads)."""
    if runtime not in RUNTIME_CHOICES:
        raise SpecError(
            f"Unknown runtime {runtime!r}.",
            f"Use runtime= one of {', '.join(RUNTIME_CHOICES)}.",
            field="runtime",
        )


def rank_runtimes(
    loaded: LoadedModel, task: str, built: Built, tolerance: Tolerance, runtime: str = "auto"
) -> Ranking:
    """Judge and race the runtimes that can run ``built`` (only ``runtime``'s unless
    ``auto``); see the module docstring. Raises SpecError for an unknown ``runtime``,
    OptimizationError for one that cannot run this level, MissingExtraError for a named
    runtime that is not installed."""
    check_runtime(runtime)
    candidates = runtime_candidates(built)
    if runtime != "auto":
        named = [c for c in candidates if runtime_of(c) == runtime]
        if not named:
            offered = ", ".join(sorted({runtime_of(c) for c in candidates}))
            raise OptimizationError(
                f"runtime={runtime!r} cannot run this build (it runs on {offered}).",
                f"Use runtime='auto' or one of {offered}.",
            )
        candidates = named
    texts = built.texts[:JUDGE_TEXTS]
    expected = built.expected[: len(texts)]
    entries: list[dict[str, Any]] = []
    engines: list[tuple[Subject, Engine, dict[str, Any]]] = []
    fallback: Subject | None = None  # the first candidate judged
    for subject in candidates:
        entry: dict[str, Any] = {"runtime": runtime_of(subject), **_precision(subject)}
        entries.append(entry)
        try:
            engine = Engine(loaded, task)
            backend = backend_for(engine, subject)
            engine.task.attach(backend)
        except MissingExtraError as exc:
            if runtime != "auto":
                raise
            entry["skipped"] = f"not installed: {exc.hint}"
            continue
        except TaskError as exc:  # the runtime cannot read this graph (an operator it lacks)
            if runtime != "auto":
                raise
            entry["skipped"] = f"cannot run this graph: {_reason(exc)}"
            continue
        if (
            isinstance(backend, OpenVinoBackend)
            and backend.effective_precision != backend.precision
        ):
            # asked for bf16 on a CPU without bfloat16 units: it would time float32 again
            entry["skipped"] = (
                f"this CPU has no {backend.precision} arithmetic "
                f"(OpenVINO runs {backend.effective_precision})"
            )
            continue
        fallback = fallback or subject
        check = check_vectors(expected, task_vectors(engine.predict(texts)), tolerance)
        entry.update(min_cosine=check.min_cosine, max_abs_diff=check.max_abs_diff)
        if not check.passed:
            entry["failures"] = check.failures
            continue
        engines.append((subject, engine, entry))
    if len(engines) > 1:
        best = {id(entry): float("inf") for _, _, entry in engines}
        race = texts[:RACE_TEXTS]
        for _ in range(RACE_ROUNDS):
            for _, engine, entry in engines:
                start = time.perf_counter()
                engine.predict(race)
                best[id(entry)] = min(best[id(entry)], time.perf_counter() - start)
        for _, _, entry in engines:
            entry["texts_per_second"] = round(len(race) / best[id(entry)], 1)
        engines.sort(key=lambda item: -item[2]["texts_per_second"])
    record = {
        "requested": runtime,
        "judged_texts": len(texts),
        "race": {"texts": min(len(texts), RACE_TEXTS), "rounds": RACE_ROUNDS}
        if len(engines) > 1
        else None,
        "candidates": entries,
    }
    return Ranking([subject for subject, _, _ in engines], record, fallback)


def _reason(exc: TaskError) -> str:
    """The line of a runtime's error that says why (OpenVINO's run to many lines)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    named = [line for line in lines if "No conversion rule" in line or "not supported" in line]
    return (named or lines or [type(exc).__name__])[0].lstrip("- ")


def _precision(subject: Subject) -> dict[str, Any]:
    if isinstance(subject, OpenVinoGraph):
        return {"precision": subject.precision}
    return {}


__all__ = ["RUNTIME_CHOICES", "Ranking", "check_runtime", "rank_runtimes"]
