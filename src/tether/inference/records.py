"""``Records``: one description of an input file, for everything that reads one.

The local runner (``run_file``), ``cluster()``, ``compare_models()``, ``tether beam run``
and ``Model.encode`` all take a ``Records``: where the file is, its format, and which
columns hold the text, the id and (for scoring) the label. It checks itself when built,
like ``ModelSpec``, so a bad column option or an unknown extension is one clear error
naming the argument before any model loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.errors import InputError
from tether.inference.io import INPUT_FORMATS, Record, count_records, guess_format, read_records


@dataclass(frozen=True)
class Records:
    """The records of one file: text (one per line), JSONL, CSV or Parquet.

    Args:
        path: the file (or, for ``tether beam run``, a glob or a ``gs://`` / ``s3://`` path).
        format: ``text``, ``jsonl``, ``csv`` or ``parquet``; default: from the extension
            (resolved when built, so ``Records("a.jsonl").format == "jsonl"``).
        text_column: the field holding the text (default ``text``); not for plain text.
        id_column: the field kept as each record's id (default: the line number).
        label_column: a field holding a known group, for scoring (``cluster``,
            ``compare_models``) or carried on ``Model.encode``'s result.

    Raises:
        InputError: an unknown format or extension, columns for plain text, or an empty
            column name; the message names the argument.
    """

    path: str
    format: str | None = None
    text_column: str | None = None
    id_column: str | None = None
    label_column: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.path, Path):
            object.__setattr__(self, "path", str(self.path))
        if not isinstance(self.path, str) or not self.path.strip():
            raise InputError(
                f"Records.path must name a file, got {self.path!r}.",
                "Pass Records('data.jsonl') (a path to a text, JSONL, CSV or Parquet file).",
            )
        for name in ("format", "text_column", "id_column", "label_column"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InputError(
                    f"Records.{name} must be a non-empty string, got {value!r}.",
                    f"Pass {name}='...' or leave it unset.",
                    path=self.path,
                )
        fmt = self.format or guess_format(self.path, INPUT_FORMATS, "format=")
        if fmt not in INPUT_FORMATS:
            raise InputError(
                f"Unknown input format {fmt!r}.",
                f"Pass format= one of: {', '.join(INPUT_FORMATS)}.",
                path=self.path,
            )
        object.__setattr__(self, "format", fmt)
        if fmt == "text":
            named = [n for n in ("text_column", "id_column", "label_column") if getattr(self, n)]
            if named:
                raise InputError(
                    f"{self.path!r} is plain text (one record per line, no columns), so "
                    f"{', '.join(named)} cannot apply.",
                    f"Use a JSONL, CSV or Parquet file, or drop {'=, '.join(named)}=.",
                    path=self.path,
                )

    # -- what it says ---------------------------------------------------------------

    @property
    def fmt(self) -> str:
        """The resolved format (never None once built)."""
        assert self.format is not None
        return self.format

    @property
    def text_field(self) -> str:
        """The field the text is read from (``text`` unless ``text_column`` says)."""
        return self.text_column or "text"

    @property
    def is_local(self) -> bool:
        """False for a glob or a remote (``scheme://``) path, which only Beam reads."""
        return "://" not in self.path and "*" not in self.path

    def require_file(self) -> None:
        """Raise InputError unless ``path`` is an existing local file: the check the
        local readers make, made early so it comes before a model loads."""
        if not self.is_local:
            raise InputError(
                f"{self.path!r} is a glob or a remote path, which only `tether beam run` reads.",
                "Pass a local file path, or run the job in Beam.",
                path=self.path,
            )
        if not Path(self.path).is_file():
            raise InputError(
                f"Input file {self.path!r} does not exist.", "Check the path.", path=self.path
            )

    def refuse_labels(self, reader: str) -> None:
        """For readers that have no use for labels: a label column given to them is an
        error, not an option silently ignored."""
        if self.label_column:
            raise InputError(
                f"{reader} does not read labels, but label_column={self.label_column!r} is set.",
                "Drop label_column= (it is for cluster() and compare_models()).",
                path=self.path,
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "text_column": self.text_column,
            "id_column": self.id_column,
            "label_column": self.label_column,
        }

    # -- reading --------------------------------------------------------------------

    def read(self) -> Iterator[Record]:
        """Every record of the file in order, unreadable ones included (with ``problem``
        set), through the one reading core (``tether.inference.io``)."""
        return read_records(self.path, self.fmt, self.text_column, self.id_column)

    def count(self) -> int | None:
        """A cheap record count for a progress bar (None when it would cost a parse)."""
        return count_records(self.path, self.fmt)

    def read_labelled(self) -> Iterator[tuple[Record, str | None, str | None]]:
        """(record, label, label problem) per record. Labels are read by a second pass of
        the same reading core with the label column as its text column, so both passes
        cut the file into the same records with the same line numbers. Without a
        ``label_column`` every label is None, with no problem."""
        records = self.read()
        if not self.label_column:
            for record in records:
                yield record, None, None
            return
        column = self.label_column
        labels = read_records(self.path, self.fmt, column, self.id_column)
        for record, label in zip(records, labels, strict=True):
            assert record.line == label.line, "both passes read the same records"
            if label.problem is not None or label.value is None:
                problem = label.problem or f"label column {column!r} is null"
                yield record, None, problem.replace(f"no {column!r} field", "no label")
            else:
                yield record, str(label.value), None


def as_records(value: Records | str | Path, argument: str = "records") -> Records:
    """A ``Records`` as given, or one built from a path (format from its extension)."""
    if isinstance(value, Records):
        return value
    if isinstance(value, str | Path):
        return Records(str(value))
    raise InputError(
        f"{argument}= must be a Records or a file path, got {type(value).__name__}.",
        f"Pass {argument}=Records('data.jsonl', text_column='body') or a path.",
    )
