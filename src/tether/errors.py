"""One exception hierarchy for tether.

Every error carries a ``hint``: the next thing the user should do. The CLI prints
the message and the hint, never a traceback (unless ``--debug``).
"""

from __future__ import annotations


class TetherError(Exception):
    """Root of every error tether raises on purpose."""

    default_hint = "Run with --debug for the full traceback."

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint or self.default_hint
        super().__init__(f"{message}\n  -> {self.hint}")


class SpecError(TetherError, ValueError):
    """A ModelSpec is invalid (unknown class, bad dtype, class and task both set...)."""

    default_hint = "Fix the spec field named above; `tether spec --help` lists every field."


class SourceNotFoundError(TetherError, FileNotFoundError):
    """The model source is neither a local directory nor in the Hugging Face cache."""

    default_hint = (
        "Pass an existing local directory, or download the repo first "
        "(`huggingface-cli download REPO`) and unset HF_HUB_OFFLINE if you are online."
    )


class LoadGuardError(TetherError):
    """A guard refused to load a model that would silently differ from what was asked."""


class UntrustedCustomCodeError(LoadGuardError):
    """The model needs its own code (``auto_map``) but trust_remote_code is off."""


class WeightMismatchError(LoadGuardError):
    """Weights are missing, unexpected, newly initialised or of the wrong shape."""


class UnsafeWeightsError(LoadGuardError):
    """Only pickle weight files are present and the spec does not allow them."""


class TokenizerError(LoadGuardError):
    """The tokenizer is missing or does not fit the model."""


class MissingExtraError(TetherError, ImportError):
    """An optional dependency is not installed."""


class InputError(TetherError, ValueError):
    """Input data cannot be read or has the wrong shape."""

    default_hint = "Check the input file and the column options (`--text-column`, `--id-column`)."


def require_extra(module: str, extra: str) -> object:
    """Import ``module`` or raise MissingExtraError naming the pip extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            f"This feature needs the Python package {module!r}, which is not installed ({exc}).",
            hint=f"Install it with `pip install 'tether[{extra}]'`.",
        ) from exc


class ParityError(TetherError):
    """A parity comparison cannot be set up (bad candidate, no shared outputs, ...)."""

    default_hint = "See `tether compare --help` for the accepted forms of A and B."


class ParityMismatchError(ParityError):
    """Two models' outputs differ beyond the tolerance (raised by ParityReport.check())."""

    default_hint = (
        "Look at the first divergent module in the report (`tether compare A B`); if the "
        "drift is expected for this change, pick a looser preset (--preset fp16|bf16|int8)."
    )


class BundleError(TetherError):
    """A tether bundle cannot be saved or read (bad target, incomplete, unreadable manifest)."""

    default_hint = "Save the model again with `tether save SOURCE OUT_DIR`."


class IncompleteBundleError(BundleError):
    """The directory is a bundle whose save never finished, or whose files are gone."""


class BundleClassMismatchError(BundleError, LoadGuardError):
    """A bundle is loaded as a different class than the one it was saved and fingerprinted as."""


class FingerprintError(TetherError):
    """A fingerprint file is missing or unreadable."""

    default_hint = "Re-save the bundle with `tether save`, which writes a fresh fingerprint."


class VerificationError(TetherError):
    """A bundle failed verification: files or outputs differ from what its manifest records."""

    default_hint = (
        "Run `tether verify BUNDLE` for the full report, then re-save from a trusted copy."
    )


class CardError(TetherError):
    """A model card cannot be read or written."""

    default_hint = "Check that the path is a model directory or a README.md with YAML metadata."


# --- Hub server (tether.hub.server) -------------------------------------------------------------


class HubError(TetherError):
    """The self-hosted hub server refused a request or cannot start.

    ``status`` is the HTTP status the server answers with and ``error_code`` the value of the
    ``X-Error-Code`` header the huggingface_hub client maps to its own exception classes.
    """

    default_hint = "See docs/hub.md for the routes and what each one expects."
    status: int = 400
    error_code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        if status is not None:
            self.status = status
        if error_code is not None:
            self.error_code = error_code


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
    """Uploaded bytes do not match the hash they were announced with."""

    status = 422
