"""What the face returns: ``Embeddings`` (an array with its errors and positions),
``Outputs`` (any other task's values) and ``FailedRecord`` (one input that did not run).

Both results keep the promise of every runner: ``records == rows + errors``, checked
when a result is built, so a record is never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from tether.errors import OutputError


@dataclass(frozen=True)
class FailedRecord:
    """One input that could not run, and why: the shape of an errors-file row plus the
    record's ``position`` in the input (0-based, counting every record given)."""

    position: int
    kind: str  # "empty", "not-text", "unreadable", "no-label", "model-error", ...
    reason: str
    value: Any  # the input as given
    line: int | None = None  # the file's line (or row) number, for a Records input
    id: Any = None  # the record's id (its id_column, or its line), for a Records input


class Embeddings(np.ndarray):
    """A ``(rows, dim)`` float32 array of the inputs that embedded, in input order.

    Attributes:
        positions: ``(rows,)`` int64, the input position of each row.
        errors: the inputs that did not embed, as ``FailedRecord`` (with positions).
        records: how many inputs were given: ``len(self) + len(self.errors)``.
        ids: each row's record id (a ``Records`` input), else its position.
        labels: each row's label when the ``Records`` has a ``label_column``, else None.
        truncated: how many inputs were cut to the model's maximum length.
        model_id: the model that made them.

    Slices, arithmetic and NumPy functions give plain arrays (``emb @ emb.T`` is a
    similarity matrix, not Embeddings): the attributes describe the whole result.
    """

    positions: np.ndarray
    errors: tuple[FailedRecord, ...]
    records: int
    ids: list[Any]
    labels: list[str] | None
    truncated: int
    model_id: str | None

    @classmethod
    def build(
        cls,
        vectors: Any,
        positions: Sequence[int],
        errors: Sequence[FailedRecord],
        records: int,
        *,
        ids: Sequence[Any] | None = None,
        labels: Sequence[str] | None = None,
        truncated: int = 0,
        model_id: str | None = None,
    ) -> Embeddings:
        """Assemble a result; refuses one whose counts do not add up."""
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim != 2:
            raise OutputError(
                f"Embeddings are (rows, dim), got shape {array.shape}.",
                "Please report this as a bug.",
            )
        result = array.view(cls)
        result.positions = np.asarray(positions, dtype=np.int64)
        result.errors = tuple(errors)
        result.records = records
        result.ids = list(positions if ids is None else ids)
        result.labels = None if labels is None else list(labels)
        result.truncated = truncated
        result.model_id = model_id
        _check_counts(records, len(result), len(result.positions), result.errors)
        return result

    def __array_finalize__(self, obj: Any) -> None:
        # A copy or same-shape view (``.copy()``, ``.astype``) keeps the attributes;
        # anything reshaped is not aligned with them and has none.
        same = isinstance(obj, Embeddings) and getattr(obj, "shape", None) == self.shape
        self.positions = obj.positions if same else np.zeros(0, np.int64)
        self.errors = obj.errors if same else ()
        self.records = obj.records if same else len(self)
        self.ids = obj.ids if same else []
        self.labels = obj.labels if same else None
        self.truncated = obj.truncated if same else 0
        self.model_id = obj.model_id if same else None

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = _plain(inputs)
        if "out" in kwargs:
            kwargs["out"] = _plain(kwargs["out"])
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return func(*_plain(args), **_plain(kwargs))

    def __getitem__(self, key: Any) -> Any:
        return self.view(np.ndarray)[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.view(np.ndarray))

    @property
    def T(self) -> Any:  # a plain array, as slices are
        return self.view(np.ndarray).T

    def transpose(self, *axes: Any) -> Any:
        return self.view(np.ndarray).transpose(*axes)

    def reshape(self, *shape: Any, **kwargs: Any) -> Any:
        return self.view(np.ndarray).reshape(*shape, **kwargs)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return self.__reduce__()

    def __reduce__(self) -> Any:
        return (
            _rebuild_embeddings,
            (
                self.view(np.ndarray).copy(),
                self.positions,
                self.errors,
                self.records,
                self.ids,
                self.labels,
                self.truncated,
                self.model_id,
            ),
        )

    def __repr__(self) -> str:
        return (
            f"Embeddings(shape={self.shape}, records={self.records}, "
            f"errors={len(self.errors)}, model_id={self.model_id!r})"
        )

    @property
    def array(self) -> np.ndarray:
        """The vectors as a plain ``numpy.ndarray`` (no copy)."""
        return self.view(np.ndarray)

    def aligned(self, fill: float = float("nan")) -> np.ndarray:
        """A ``(records, dim)`` array with a row for every input, in input order: the
        failed inputs' rows are ``fill`` (NaN by default), so nothing shifts."""
        dim = self.shape[1] if self.ndim == 2 else 0
        full = np.full((self.records, dim), fill, dtype=np.float32)
        full[self.positions] = self.array
        return full


def _rebuild_embeddings(
    vectors: Any,
    positions: Any,
    errors: Any,
    records: int,
    ids: Any,
    labels: Any,
    truncated: int,
    model_id: Any,
) -> Embeddings:
    return Embeddings.build(
        vectors,
        positions,
        errors,
        records,
        ids=ids,
        labels=labels,
        truncated=truncated,
        model_id=model_id,
    )


def _plain(value: Any) -> Any:
    """``value`` with every Embeddings in it (tuples, lists, dicts) as a plain array."""
    if isinstance(value, Embeddings):
        return value.view(np.ndarray)
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Outputs(Sequence[Any]):
    """The outputs of the inputs that ran, in input order, and the ones that did not.

    Indexing and iterating go over ``values`` (one per good input: a classifier's
    ``{"label", "score", "scores"}``, fill-mask's candidates, a pipeline's output);
    ``positions[i]`` is the input position of ``values[i]``, and
    ``records == len(values) + len(errors)``.
    """

    task: str
    values: list[Any]
    positions: list[int]
    errors: tuple[FailedRecord, ...]
    records: int
    ids: list[Any]
    labels: list[str] | None = None
    truncated: int = 0
    model_id: str | None = None

    def __post_init__(self) -> None:
        _check_counts(self.records, len(self.values), len(self.positions), self.errors)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        return self.values[index]

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        return (
            f"Outputs(task={self.task!r}, rows={len(self.values)}, records={self.records}, "
            f"errors={len(self.errors)}, model_id={self.model_id!r})"
        )


def _check_counts(records: int, rows: int, positions: int, errors: Sequence[Any]) -> None:
    if rows != positions or records != rows + len(errors):
        raise OutputError(
            f"Record accounting failed: {records} in, {rows} rows ({positions} positions) "
            f"+ {len(errors)} errors.",
            "Please report this as a bug.",
        )
