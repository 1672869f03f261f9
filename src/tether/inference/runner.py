"""The local runner: a model over a file, streamed in chunks, resumable, nothing lost.

Each chunk of ``chunk_size`` input records becomes one part file in
``OUTPUT.tether-parts/``, written atomically. A killed run resumes by skipping the
chunks whose part exists; because chunks are cut at the same records and batched
the same way, the merged output is the same file an uninterrupted run writes.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.bundles import atomic
from tether.errors import InputError, OutputError, SpecError
from tether.inference.engine import Engine
from tether.inference.io import (
    OUTPUT_FORMATS,
    Record,
    RowWriter,
    default_errors_path,
    from_parquet,
    guess_format,
    json_line,
    prediction_columns,
)
from tether.inference.lock import output_lock
from tether.inference.records import Records, as_records
from tether.inference.results import Prediction, RecordError, RunSummary
from tether.models.loading import LoadedModel

PARTS_SUFFIX = ".tether-parts"
DEFAULT_RUN_CHUNK_SIZE = 2048


@dataclass
class RunConfig:
    """What to read (a ``Records``, or a path to build one from), how to run it and
    where to write it."""

    input: Records | str
    output: str
    task: str = "embed"
    task_options: dict[str, Any] = field(default_factory=dict)
    output_format: str | None = None
    errors: str | None = None
    chunk_size: int = DEFAULT_RUN_CHUNK_SIZE
    max_tokens: int | None = None
    max_rows: int | None = None
    keep_input: bool = False

    def __post_init__(self) -> None:
        self.input = as_records(self.input, "input")

    @property
    def records(self) -> Records:
        """The input as a ``Records`` (``input`` after ``__post_init__``)."""
        assert isinstance(self.input, Records)
        return self.input

    def resolved(self) -> RunConfig:
        """Fill in the output format and the errors path; validate combinations."""
        self.records.refuse_labels("run_file()")
        self.records.require_file()
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
        errors = self.errors or default_errors_path(self.output)
        refuse_clashes(self.records.path, self.output, errors, output_format)
        return dataclasses.replace(self, output_format=output_format, errors=errors)


def run_file(
    loaded: LoadedModel,
    config: RunConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    backend: Any = None,
) -> RunSummary:
    """Run ``loaded`` over ``config.records`` and write ``config.output`` plus an errors file.

    ``backend``: what runs the forward pass instead of PyTorch (``Engine(backend=)``).
    """
    config = config.resolved()
    Path(config.output).parent.mkdir(parents=True, exist_ok=True)
    with output_lock(config.output), _write_errors(config.output):
        return _run_locked(
            loaded, config, resume=resume, overwrite=overwrite, progress=progress, backend=backend
        )


def _run_locked(
    loaded: LoadedModel,
    config: RunConfig,
    *,
    resume: bool,
    overwrite: bool,
    progress: bool,
    backend: Any = None,
) -> RunSummary:
    output = Path(config.output)
    parts = Path(str(output) + PARTS_SUFFIX)
    fingerprint = _run_fingerprint(loaded, config, backend)
    _prepare_parts_dir(parts, output, fingerprint, resume=resume, overwrite=overwrite)

    engine_options: dict[str, Any] = {}
    if config.max_tokens:
        engine_options["max_tokens"] = config.max_tokens
    if config.max_rows:
        engine_options["max_rows"] = config.max_rows
    engine = Engine(loaded, config.task, **engine_options, backend=backend, **config.task_options)
    summary = RunSummary(output=str(output), errors_path=str(config.errors))
    started = time.perf_counter()

    total = config.records.count()
    bar = _progress(total, config.task, enabled=progress)
    records = config.records.read()
    pending: collections.deque[tuple[int, list[Record]]] = collections.deque()

    def pending_values() -> Iterator[list[Any]]:
        for index, chunk in enumerate(_chunks(records, config.chunk_size)):
            summary.records += len(chunk)  # counted as read, independently of what is written
            if _part_path(parts, index).exists():
                _check_consumed(parts, index, chunk, config)
                summary.resumed_chunks += 1
                bar.update(len(chunk))
                continue
            pending.append((index, chunk))
            yield [r.value for r in chunk if r.problem is None]

    counted = repeated = 0
    for outcomes in engine.stream_chunks(pending_values()):
        index, chunk = pending.popleft()
        rows, errors = _rows(chunk, iter(outcomes), config)
        truncated, counted = engine.stats["truncated"] - counted, engine.stats["truncated"]
        duplicates, repeated = engine.stats["duplicates"] - repeated, engine.stats["duplicates"]
        _write_part(parts, index, rows, errors, truncated, _chunk_digest(chunk), duplicates)
        bar.update(len(chunk))
    bar.close()

    _merge(parts, config, summary)
    summary.seconds = time.perf_counter() - started
    shutil.rmtree(parts, ignore_errors=True)
    if not summary.balanced:
        raise OutputError(
            f"Record accounting failed: {summary.line()}",
            "Please report this as a bug.",
            path=config.output,
        )
    return summary


@contextlib.contextmanager
def _write_errors(output: str) -> Iterator[None]:
    """A full disk or a read-only directory is one clear OutputError, not a traceback.
    Finished parts stay, so the run resumes once there is room."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or output
        hint = "Check that the output directory exists and is writable."
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = "Free some space, then run again with resume=True to continue."
        elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            hint = "Write the output to a writable directory."
        raise OutputError(
            f"{exc.strerror or exc}: {where} (the run stopped; finished chunks are kept).",
            hint,
            path=output,
        ) from exc


def refuse_clashes(input_path: str, output: str, errors: str, output_format: str) -> None:
    """Never write over the input, nor the output over the errors file."""
    files = {"input": input_path, "output": output, "errors file": errors}
    if output_format == "npy":
        files["ids file"] = ids_path(output)
    seen: dict[str, str] = {}
    for role, name in files.items():
        key = _identity(name)
        if key in seen:
            raise OutputError(
                f"The {role} {name!r} is the same file as the {seen[key]}; "
                "the run would overwrite it.",
                "Choose different paths for input=, output= and errors=.",
                path=name,
            )
        seen[key] = role


def _identity(name: str) -> Any:
    path = Path(name)
    with contextlib.suppress(OSError):
        stat = path.stat()
        return (stat.st_dev, stat.st_ino)
    return str(path.resolve())


def ids_path(output: str | Path) -> str:
    """Where the ids of a ``.npy`` output go: one JSON row (id, line) per vector."""
    return f"{output}.ids.jsonl"


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
            errors.append(error_row(record, "unreadable", record.problem))
            continue
        outcome = next(outcomes)
        if isinstance(outcome, RecordError):
            errors.append(error_row(record, outcome.kind, outcome.reason))
            continue
        assert isinstance(outcome, Prediction)
        row: dict[str, Any] = {"id": record.id, "line": record.line}
        if config.keep_input:
            row["input"] = record.value
        row.update(prediction_columns(config.task, outcome.inference))
        rows.append(row)
    return rows, errors


def error_row(record: Record, kind: str, reason: str) -> dict[str, Any]:
    """One errors-file row (line, id, kind, reason, value): the shape every command that
    reads records writes, so one errors file reads like another."""
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
    digest: str,
    duplicates: int = 0,
) -> None:
    """Errors and counts first, then the data part, whose existence marks the chunk done."""
    atomic.write_text(
        parts / f"stats-{index:06d}.json",
        json.dumps({"truncated": truncated, "duplicates": duplicates, "input": digest}),
    )
    errors_path = parts / f"errors-{index:06d}.jsonl"
    atomic.write_text(errors_path, "".join(json_line(e) for e in errors))
    target = _part_path(parts, index)
    tmp = target.with_suffix(".tmp")
    writer = RowWriter(tmp, "parquet")
    writer.write(rows)
    writer.close()
    atomic.publish_file(tmp, target)


def _chunk_digest(chunk: list[Record]) -> str:
    """A content hash of what a chunk consumed: every record's line, id, value, problem."""
    digest = hashlib.sha256()
    for record in chunk:
        digest.update(json_line([record.line, record.id, record.value, record.problem]).encode())
    return digest.hexdigest()


def _check_consumed(parts: Path, index: int, chunk: list[Record], config: RunConfig) -> None:
    """A resumed chunk must have read the same records as the interrupted run did."""
    stats = parts / f"stats-{index:06d}.json"
    recorded = json.loads(stats.read_text()).get("input") if stats.exists() else None
    if recorded != _chunk_digest(chunk):
        raise OutputError(
            f"The input {config.records.path} changed since the interrupted run: records "
            f"{chunk[0].line}-{chunk[-1].line} differ from the ones its finished part was "
            "made from, so resuming would mix outputs of two inputs.",
            "Restore the input, or start again with overwrite=True.",
            path=config.output,
        )


def _merge(parts: Path, config: RunConfig, summary: RunSummary) -> None:
    """Concatenate part files into the output and errors files, atomically."""
    import pyarrow.parquet as pq

    output = Path(config.output)
    tmp_out = output.with_name(output.name + ".tmp")
    writer = RowWriter(tmp_out, config.output_format or "parquet")
    ids_tmp = Path(ids_path(tmp_out))
    ids = ids_tmp.open("w", encoding="utf-8") if writer.fmt == "npy" else None
    for part in sorted(parts.glob("part-*.parquet")):
        table = pq.read_table(part)
        if table.num_rows == 0:
            continue
        summary.written += table.num_rows
        if writer.fmt == "parquet":
            if writer._parquet is not None and table.schema != writer._parquet.schema:
                table = _conform(table, writer._parquet.schema)
            writer.write_table(table)
        else:
            rows = [from_parquet(row) for row in table.to_pylist()]
            writer.write(rows)
            if ids is not None:
                ids.writelines(json_line({"id": r["id"], "line": r["line"]}) for r in rows)
    writer.close()
    if ids is not None:
        ids.close()
    errors_path = Path(config.errors or "")
    tmp_err = errors_path.with_name(errors_path.name + ".tmp")
    with tmp_err.open("w", encoding="utf-8") as out:
        for part in sorted(parts.glob("errors-*.jsonl")):
            text = part.read_text(encoding="utf-8")
            summary.errors += text.count("\n")
            out.write(text)
    stats = [json.loads(p.read_text()) for p in parts.glob("stats-*.json")]
    summary.truncated = sum(s["truncated"] for s in stats)
    summary.duplicates = sum(s.get("duplicates", 0) for s in stats)
    if ids is not None:
        atomic.publish_file(ids_tmp, Path(ids_path(output)))
    atomic.publish_file(tmp_out, output)
    atomic.publish_file(tmp_err, errors_path)


def _conform(table: Any, schema: Any) -> Any:
    """Cast a part whose column types differ from the first part's (e.g. a column that was
    all null there); a real disagreement is a clear error, not a crash mid-merge."""
    import pyarrow as pa

    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as exc:
        raise OutputError(
            f"Part files disagree on column types ({table.schema} vs {schema}).",
            "Please report this as a bug.",
        ) from exc


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
    if output.exists() and not overwrite:
        if resume:
            raise OutputError(
                f"Output {output} already exists and no interrupted run is left to resume, "
                "so nothing shows it was made with these settings.",
                "Keep it, or pass overwrite=True to replace it.",
                path=str(output),
            )
        raise OutputError(
            f"Output {output} already exists.",
            "Pass overwrite=True to replace it.",
            path=str(output),
        )
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True)
    atomic.write_text(stamp, json.dumps({"fingerprint": fingerprint}))


def _run_fingerprint(loaded: LoadedModel, config: RunConfig, backend: Any = None) -> str:
    # The input's content is checked chunk by chunk on resume (_check_consumed), not
    # by size and mtime, which a rewrite can keep and a copy changes. A resumed run
    # uses the backend the run started with (another would change the last digits).
    settings = dataclasses.asdict(config)
    del settings["errors"]
    settings["input"] = config.records.to_dict()
    data: dict[str, Any] = {
        "spec": loaded.spec.to_dict(),
        "config": settings,
        "input": str(Path(config.records.path).resolve()),
    }
    if backend is not None:
        data["backend"] = backend.name
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
