"""One exception hierarchy for tether.

Every error carries a ``message`` (what went wrong), a ``hint`` (the next thing to do,
naming API arguments such as ``trust_remote_code=True``; the command line's handler
adds the matching flags) and its facts as attributes (``exc.source``, ``exc.path``,
``exc.missing_keys``...), as huggingface_hub's errors carry ``repo_id``::

    TetherError
    ├── SpecError (ValueError)                   a ModelSpec or an option is invalid
    ├── SourceNotFoundError (FileNotFoundError)  no model at that source
    ├── DeviceUnavailableError (RuntimeError)    the spec's device is not on this machine
    ├── ModelLoadError                           transformers could not build the model
    ├── LoadGuardError                           a guard refused a silently different model
    │   ├── UntrustedCustomCodeError             auto_map code without trust_remote_code
    │   ├── WeightMismatchError                  missing / unused / mismatched weights
    │   ├── UnsafeWeightsError                   pickle weights without allow_pickle
    │   ├── TokenizerError                       no tokenizer, or one that does not fit
    │   └── BundleClassMismatchError (+BundleError)
    ├── TaskError (ValueError)                   a task cannot run on this model / options
    ├── InputError (ValueError)                  input data unreadable or mis-shaped
    │   └── FailedRecordsError                   errors="raise" and some records failed
    ├── OutputError                              an output exists, or an interrupted run differs
    ├── MissingExtraError (ImportError)          an optional dependency is not installed
    ├── BundleError                              a bundle cannot be saved or read
    │   └── IncompleteBundleError                unfinished save, or files gone
    ├── FingerprintError, VerificationError      a fingerprint unreadable / a bundle differs
    ├── CardError                                a model card cannot be read or written
    ├── OptimizationError                        a model cannot be optimised (export, CPU)
    │   └── OptimizationMismatchError            an optimised graph failed its verification
    ├── ParityError                              a comparison cannot be set up
    │   └── ParityMismatchError                  outputs differ beyond the tolerance
    └── HubError                                 a hub (server or client side) refused a request
        └── HubAuthError, HubNotFoundError, HubConflictError, HubIntegrityError

The CLI prints the message and the hint, never a traceback (unless ``--debug``).
"""

from __future__ import annotations

from typing import Any, ClassVar


class TetherError(Exception):
    """Root of every error tether raises on purpose.

    Subclasses declare their facts as annotated class attributes (default None);
    ``__init__`` takes them as keywords and refuses a name the class does not declare,
    so a typo in a fact is a bug caught at once, not an attribute silently missing.
    """

    default_hint: ClassVar[str] = "Run with --debug for the full traceback."

    def __init__(self, message: str, hint: str | None = None, **facts: Any) -> None:
        unknown = set(facts) - self.fact_names()
        if unknown:
            raise TypeError(f"{type(self).__name__} has no fact(s) {sorted(unknown)}")
        self.message = message
        self.hint = hint or self.default_hint
        self.facts = facts
        for name, value in facts.items():
            setattr(self, name, value)
        super().__init__(f"{message}\n  -> {self.hint}")

    @classmethod
    def fact_names(cls) -> set[str]:
        """The fact attributes this error class declares (over its whole MRO)."""
        names: set[str] = set()
        for klass in cls.__mro__:
            if issubclass(klass, TetherError):
                names.update(
                    n for n in getattr(klass, "__annotations__", {}) if n != "default_hint"
                )
        return names

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep message, hint and facts through pickling (Beam workers pickle errors).
        return (_rebuild, (type(self), self.message, self.hint, self.facts))


def _rebuild(cls: type[TetherError], message: str, hint: str, facts: dict[str, Any]) -> Any:
    return cls(message, hint, **facts)


# -- recipe and source ------------------------------------------------------------------


class SpecError(TetherError, ValueError):
    """A ModelSpec (or an option) is invalid: unknown class, bad dtype, bad device..."""

    default_hint = "Fix the spec field named above; `tether spec --help` lists every field."
    field: str | None = None


class SourceNotFoundError(TetherError, FileNotFoundError):
    """The model source is neither a local directory nor in the Hugging Face cache."""

    default_hint = (
        "Pass an existing local directory, or download the repo first "
        "(`hf download REPO`) and unset HF_HUB_OFFLINE if you are online."
    )
    source: str | None = None


class DeviceUnavailableError(TetherError, RuntimeError):
    """The spec asks for a device this machine does not have."""

    device: str | None = None


# -- loading ----------------------------------------------------------------------------


class ModelLoadError(TetherError):
    """transformers could not build the model from its files as the class asked for."""

    source: str | None = None
    model_class: str | None = None


class LoadGuardError(TetherError):
    """A guard refused to load a model that would silently differ from what was asked."""

    source: str | None = None


class UntrustedCustomCodeError(LoadGuardError):
    """The model needs its own code (``auto_map``) but trust_remote_code is off."""

    files: dict[str, str] | None = None  # code file -> sha256


class WeightMismatchError(LoadGuardError):
    """Weights are missing, unexpected, newly initialised or of the wrong shape."""

    model_class: str | None = None
    missing_keys: list[str] | None = None
    unexpected_keys: list[str] | None = None
    mismatched_keys: list[str] | None = None


class UnsafeWeightsError(LoadGuardError):
    """Only pickle weight files are present and the spec does not allow them."""

    files: list[str] | None = None


class TokenizerError(LoadGuardError):
    """The tokenizer is missing or does not fit the model."""

    tokenizer: str | None = None


# -- running ----------------------------------------------------------------------------


class TaskError(TetherError, ValueError):
    """A task cannot run on this model or with these options."""

    default_hint = "See docs/engine.md for the tasks and the model classes each needs."
    task: str | None = None


class InputError(TetherError, ValueError):
    """Input data cannot be read or has the wrong shape."""

    default_hint = "Check the input file and the column options (text_column=, id_column=)."
    path: str | None = None


class FailedRecordsError(InputError):
    """``errors="raise"`` was asked for and some records could not be run: ``failures``
    holds every ``FailedRecord`` (position, line, id, kind, reason, value), ``records``
    how many were given."""

    default_hint = "Fix those records, or leave errors='collect' to get the good rows."
    failures: tuple[Any, ...] | None = None
    records: int | None = None


class OutputError(TetherError):
    """An output already exists, or an interrupted run's parts do not match this run."""

    path: str | None = None


class MissingExtraError(TetherError, ImportError):
    """An optional dependency is not installed."""

    module: str | None = None
    extra: str | None = None


def require_extra(module: str, extra: str) -> object:
    """Import ``module`` or raise MissingExtraError naming the pip extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            f"This feature needs the Python package {module!r}, which is not installed ({exc}).",
            hint=f"Install it with `pip install 'tether[{extra}]'`.",
            module=module,
            extra=extra,
        ) from exc


# -- parity -----------------------------------------------------------------------------


class ParityError(TetherError):
    """A parity comparison cannot be set up (bad candidate, no shared outputs, ...)."""

    default_hint = "See `tether compare --help` for the accepted forms of A and B."


class ParityMismatchError(ParityError):
    """Two models' outputs differ beyond the tolerance (raised by ParityReport.check())."""

    default_hint = (
        "Look at the first divergent module in the report (`tether compare A B`); if the "
        "drift is expected for this change, pick the preset of that step (tolerance='cast-fp16', "
        "'optimize-bf16', 'optimize-int8', ...: tether.tolerances.PRESETS)."
    )


# -- bundles ----------------------------------------------------------------------------


class BundleError(TetherError):
    """A tether bundle cannot be saved or read (bad target, incomplete, unreadable manifest)."""

    default_hint = "Save the model again with `tether save SOURCE OUT_DIR`."
    path: str | None = None


class IncompleteBundleError(BundleError):
    """The directory is a bundle whose save never finished, or whose files are gone."""

    missing: list[str] | None = None


class BundleClassMismatchError(BundleError, LoadGuardError):
    """A bundle is loaded as a different class than the one it was saved and fingerprinted as."""

    saved_class: str | None = None
    requested_class: str | None = None


class FingerprintError(TetherError):
    """A fingerprint file is missing or unreadable."""

    default_hint = "Re-save the bundle with `tether save`, which writes a fresh fingerprint."
    path: str | None = None


class VerificationError(TetherError):
    """A bundle failed verification: files or outputs differ from what its manifest records."""

    default_hint = (
        "Run `tether verify BUNDLE` for the full report, then re-save from a trusted copy."
    )
    path: str | None = None


class OptimizationError(TetherError):
    """A model cannot be optimised (``tether.optimize``): export failed, the level needs
    hardware this machine lacks, the task has no graph. Verification failures are the
    subclass OptimizationMismatchError."""

    default_hint = (
        "Choose a more exact level (level='exact'), or keep the layers named above in "
        "float32; `tether compare` on the same texts shows the full report."
    )
    level: str | None = None
    divergent: str | None = None  # the first module whose outputs parted ways
    min_cosine: float | None = None
    max_abs_diff: float | None = None
    path: str | None = None


class OptimizationMismatchError(OptimizationError):
    """An optimised graph's outputs differ from the original's beyond its level's tolerance
    (when built, or when re-verified on another machine). The command exits 1: a check
    failed, as ``tether compare``'s verdict does."""


class CardError(TetherError):
    """A model card cannot be read or written."""

    default_hint = "Check that the path is a model directory or a README.md with YAML metadata."
    path: str | None = None


# -- hub server (tether.hub.server) ----------------------------------------------------


class HubError(TetherError):
    """A hub refused a request: the self-hosted server (``tether hub serve``) raising it
    to answer a client, or any hub answering ``tether push`` / ``pull`` (tether.hub).

    ``status`` is the HTTP status and ``error_code`` the value of the ``X-Error-Code``
    header the huggingface_hub client maps to its own exception classes; ``repo_id`` the
    repo concerned, when there is one.
    """

    default_hint = "See docs/hub.md for the routes and what each one expects."
    status: int = 400
    error_code: str | None = None
    repo_id: str | None = None


class HubAuthError(HubError):
    """A token is missing, wrong, revoked, or lacks the scope the request needs."""

    status = 401
    default_hint = "Create a token with `tether hub token create` and set HF_TOKEN to it."


class HubNotFoundError(HubError):
    """A repo, revision or file does not exist (or is private and the caller may not see it)."""

    status = 404


class HubConflictError(HubError):
    """A commit's parent is stale, a branch moved under us, or a repo/ref already exists."""

    status = 409


class HubIntegrityError(HubError):
    """Bytes do not match the hash they were announced with: an upload to the server, or
    what a hub holds after ``tether push`` against the bundle's manifest."""

    status = 422
