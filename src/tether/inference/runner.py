"""The local runner: a model over a file, streamed in chunks, resumable, nothing lost.

Each chunk of ``chunk_size`` input records becomes one part file in
``OUTPUT.tether-parts/``, written atomically. A killed run resumes by skipping the
chunks whose part exists; because chunks are cut at the same records and batched
the same way, the merged output is the same file an uninterrupted run writes.
"""

from __future__ import annotations

import collections
import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tether.bundles import atomic
from tether.errors import InputError, OutputError, SpecError
from tether.inference.engine import Engine
from tether.inference.io import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    Record,
    RowWriter,
    count_records,
    guess_format,
    read_records,
)
from tether.inference.results import Prediction, RecordError, RunSummary
from tether.models.loading import LoadedModel

PARTS_SUFFIX = ".tether-parts"
DEFAULT_RUN_CHUNK_SIZE = 2048


@dataclass
class RunConfig:
    """What to read, how to run it and where to write it."""

    input: str
    output: str
    task: str = "embed"
    task_options: dict[str, Any] = field(default_factory=dict)
    input_format: str | None = None
    output_format: str | None = None
    text_column: str | None = None
    id_column: str | None = None
    errors: str | None = None
    chunk_size: int = DEFAULT_RUN_CHUNK_SIZE
    max_tokens: int | None = None
    max_rows: int | None = None
    keep_input: bool = False

    def resolved(self) -> RunConfig:
        """Fill in formats and the errors path; validate combinations."""
        input_format = self.input_format or guess_format(self.input, INPUT_FORMATS)
        output_format = self.output_format or guess_format(self.output, OUTPUT_FORMATS)
        if output_format == "npy" and self.task != "embed":
            raise InputError(
                f".npy output holds embeddings only, but the task is {self.task!r}.",
                "Write Parquet or JSONL instead (output='out.parquet').",
                path=self.output,
            )
        if self.chunk_size < 1:
            raise SpecError(
                f"chunk_size must be positive, got {self.chunk_size}.",
                "Pass e.g. chunk_size=2048.",
                field="chunk_size",
            )
        errors = self.errors or f"{self.output}.errors.jsonl"
        return RunConfig(
            **{
                **asdict(self),
                "input_format": input_format,
                "output_format": output_format,
                "errors": errors,
            }
        )


def run_file(
    loaded: LoadedModel,
    config: RunConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> RunSummary:
    """Run ``loaded`` over ``config.input`` and write ``config.output`` plus an errors file."""
    config = config.resolved()
    output = Path(config.output)
    parts = Path(str(output) + PARTS_SUFFIX)
    fingerprint = _run_fingerprint(loaded, config)
    _prepare_parts_dir(parts, output, fingerprint, resume=resume, overwrite=overwrite)

    engine_options: dict[str, Any] = {}
    if config.max_tokens:
        engine_options["max_tokens"] = config.max_tokens
    if config.max_rows:
        engine_options["max_rows"] = config.max_rows
    engine = Engine(loaded, config.task, **engine_options, **config.task_options)
    summary = RunSummary(output=str(output), errors_path=str(config.errors))
    started = time.perf_counter()

    total = count_records(config.input, config.input_format or "text")
    bar = _progress(total, config.task, enabled=progress)
    records = read_records(config.input, config.input_format, config.text_column, config.id_column)
    pending: collections.deque[tuple[int, list[Record]]] = collections.deque()

    def pending_values() -> Iterator[list[Any]]:
        for index, chunk in enumerate(_chunks(records, config.chunk_size)):
            if _part_path(parts, index).exists():
                summary.resumed_chunks += 1
                bar.update(len(chunk))
                continue
            pending.append((index, chunk))
            yield [r.value for r in chunk if r.problem is None]

    counted = 0
    for outcomes in engine.stream_chunks(pending_values()):
        index, chunk = pending.popleft()
        rows, errors = _rows(chunk, iter(outcomes), config)
        truncated, counted = engine.stats["truncated"] - counted, engine.stats["truncated"]
        _write_part(parts, index, rows, errors, truncated)
        bar.update(len(chunk))
    bar.close()

    _merge(parts, config, summary)
    summary.seconds = time.perf_counter() - started
    shutil.rmtree(parts, ignore_errors=True)
    if summary.records != summary.written + summary.errors:  # pragma: no cover - invariant
        raise OutputError(
            f"Record accounting failed: {summary.line()}",
            "Please report this as a bug.",
            path=config.output,
        )
    return summary


# -- chunks, rows and parts --------------------------------------------------------------


def _chunks(records: Iterator[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _rows(
    chunk: list[Record], outcomes: Iterator[Any], config: RunConfig
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for record in chunk:
        if record.problem is not None:
            errors.append(_error_row(record, "unreadable", record.problem))
            continue
        outcome = next(outcomes)
        if isinstance(outcome, RecordError):
            errors.append(_error_row(record, outcome.kind, outcome.reason))
            continue
        assert isinstance(outcome, Prediction)
        row: dict[str, Any] = {"id": record.id, "line": record.line}
        if config.keep_input:
            row["input"] = record.value
        row.update(_inference_columns(config.task, outcome.inference))
        rows.append(row)
    return rows, errors


def _inference_columns(task: str, inference: Any) -> dict[str, Any]:
    if task == "embed":
        return {"embedding": inference}
    if task == "classify":
        return {
            "label": inference["label"],
            "score": inference["score"],
            "scores": inference["scores"],
        }
    return {"result": json.dumps(inference, default=str, ensure_ascii=False)}


def _error_row(record: Record, kind: str, reason: str) -> dict[str, Any]:
    value = (
        record.value if isinstance(record.value, str | int | float | None) else repr(record.value)
    )
    if isinstance(value, str) and len(value) > 200:
        value = value[:200] + "…"
    return {"line": record.line, "id": record.id, "kind": kind, "reason": reason, "value": value}


def _part_path(parts: Path, index: int) -> Path:
    return parts / f"part-{index:06d}.parquet"


def _write_part(
    parts: Path,
    index: int,
    rows: list[dict[str, Any]],
    errors: list[dict[str, Any]],
    truncated: int,
) -> None:
    """Errors and counts first, then the data part, whose existence marks the chunk done."""
    atomic.write_text(parts / f"stats-{index:06d}.json", json.dumps({"truncated": truncated}))
    errors_path = parts / f"errors-{index:06d}.jsonl"
    atomic.write_text(
        errors_path, "".join(json.dumps(e, ensure_ascii=False, default=str) + "\n" for e in errors)
    )
    target = _part_path(parts, index)
    tmp = target.with_suffix(".tmp")
    writer = RowWriter(tmp, "parquet")
    writer.write(rows)
    writer.close()
    atomic.publish_file(tmp, target)


def _merge(parts: Path, config: RunConfig, summary: RunSummary) -> None:
    """Concatenate part files into the output and errors files, atomically."""
    import pyarrow.parquet as pq

    output = Path(config.output)
    tmp_out = output.with_name(output.name + ".tmp")
    writer = RowWriter(tmp_out, config.output_format or "parquet")
    for part in sorted(parts.glob("part-*.parquet")):
        table = pq.read_table(part)
        if table.num_rows == 0:
            continue
        summary.written += table.num_rows
        if writer.fmt == "parquet":
            writer.write_table(table)
        else:
            writer.write(table.to_pylist())
    writer.close()
    errors_path = Path(config.errors or "")
    tmp_err = errors_path.with_name(errors_path.name + ".tmp")
    with tmp_err.open("w", encoding="utf-8") as out:
        for part in sorted(parts.glob("errors-*.jsonl")):
            text = part.read_text(encoding="utf-8")
            summary.errors += text.count("\n")
            out.write(text)
    summary.records = summary.written + summary.errors
    summary.truncated = sum(
        json.loads(p.read_text())["truncated"] for p in parts.glob("stats-*.json")
    )
    atomic.publish_file(tmp_out, output)
    atomic.publish_file(tmp_err, errors_path)


def _prepare_parts_dir(
    parts: Path, output: Path, fingerprint: str, *, resume: bool, overwrite: bool
) -> None:
    stamp = parts / "run.json"
    if parts.exists() and not overwrite:
        if not resume:
            raise OutputError(
                f"An interrupted run left {parts}.",
                "Pass resume=True to continue it, or overwrite=True to start again.",
                path=str(output),
            )
        if not stamp.exists() or json.loads(stamp.read_text()).get("fingerprint") != fingerprint:
            raise OutputError(
                f"{parts} was written by a run with other settings (model, task, input or "
                "options differ), so resuming would mix outputs.",
                "Use the same settings as the interrupted run, or pass overwrite=True.",
                path=str(output),
            )
        return
    if output.exists() and not overwrite and not resume:
        raise OutputError(
            f"Output {output} already exists.",
            "Pass overwrite=True to replace it.",
            path=str(output),
        )
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True)
    atomic.write_text(stamp, json.dumps({"fingerprint": fingerprint}))


def _run_fingerprint(loaded: LoadedModel, config: RunConfig) -> str:
    stat = Path(config.input).stat()
    data = {
        "spec": loaded.spec.to_dict(),
        "config": {k: v for k, v in asdict(config).items() if k != "errors"},
        "input": [str(Path(config.input).resolve()), stat.st_size, stat.st_mtime_ns],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int | None, task: str, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit=" rec", desc=f"tether {task}", dynamic_ncols=True, smoothing=0.1)
