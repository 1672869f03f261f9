"""What push and pull share: huggingface_hub's errors turned into tether's, token-free.

The client is the unmodified ``huggingface_hub``: it finds the endpoint (``HF_ENDPOINT``)
and the token (``HF_TOKEN``, the ``hf auth login`` store) itself. tether never stores a
token; it only makes sure that none reaches a message it raises, since messages end up
in logs and CI output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tether.errors import HubAuthError, HubError, HubNotFoundError

_TOKEN_HINT = (
    "Set HF_TOKEN to a valid token (write scope to push), or run `hf auth login`; "
    "for a `tether hub serve` hub, `tether hub token create` makes one."
)


def endpoint(given: str | None = None) -> str:
    """The hub the client talks to: ``given`` (an ``endpoint=`` argument), else
    ``HF_ENDPOINT`` as huggingface_hub read it at import."""
    if given:
        return given.rstrip("/")
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def scrub(text: str, token: str | None = None) -> str:
    """``text`` with the token in use (given, or the one huggingface_hub would send)
    replaced by ``***``: server messages and URLs are quoted in tether's errors."""
    from huggingface_hub import get_token

    for secret in {token, get_token()}:
        if secret:
            text = text.replace(secret, "***")
    return text


@contextlib.contextmanager
def hub_errors(
    repo_id: str, action: str, token: str | None = None, hub: str | None = None
) -> Iterator[None]:
    """Translate what huggingface_hub raises while ``action`` runs on ``repo_id`` at the
    hub ``hub`` (an ``endpoint=`` argument; default ``HF_ENDPOINT``)."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id!r} on {endpoint(hub)}"
    try:
        yield
    except RevisionNotFoundError as exc:
        raise HubNotFoundError(
            f"Could not {action} {where}: no such revision ({_status_text(exc, token)}).",
            "Check revision= (a branch, tag or commit of the repo).",
            repo_id=repo_id,
            status=404,
            error_code="RevisionNotFound",
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        text = _status_text(exc, token)
        if status in (401, 403):
            raise HubAuthError(
                f"The hub refused to {action} {where} with the token in use "
                f"(HTTP {status}: {text}): it is missing, wrong, revoked, or lacks the "
                "scope this needs.",
                _TOKEN_HINT,
                repo_id=repo_id,
                status=status,
                error_code=_error_code(exc),
            ) from None
        if isinstance(exc, RepositoryNotFoundError) or status == 404:
            raise HubNotFoundError(
                f"Could not {action} {where}: the repo does not exist, or is private and "
                f"the token in use may not see it ({text}).",
                "Check the repo id; for a private repo set HF_TOKEN to a token that may "
                "read it, or run `hf auth login`.",
                repo_id=repo_id,
                status=404,
                error_code=_error_code(exc),
            ) from None
        raise HubError(
            f"The hub refused to {action} {where} ({text}).",
            repo_id=repo_id,
            status=status or 500,
            error_code=_error_code(exc),
        ) from None
    except OfflineModeIsEnabled:
        raise HubError(
            f"Could not {action} {where}: HF_HUB_OFFLINE is set.",
            "Unset HF_HUB_OFFLINE to reach the hub.",
            repo_id=repo_id,
        ) from None
    except Exception as exc:
        if not _is_connection_error(exc):
            raise
        raise HubError(
            f"Could not reach the hub at {endpoint(hub)} to {action} {repo_id!r} "
            f"({type(exc).__name__}: {scrub(str(exc), token)}).",
            "Check endpoint= (or HF_ENDPOINT) and that the hub is running and reachable."
            if hub
            else "Check HF_ENDPOINT and that the hub is running and reachable.",
            repo_id=repo_id,
        ) from None


def _status_text(exc: Exception, token: str | None) -> str:
    """The first line of the client's message (status and server text), token removed."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return scrub(first, token)


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return None if response is None else response.headers.get("X-Error-Code")


def _is_connection_error(exc: BaseException) -> bool:
    """A transport error (refused, reset, timed out) of whichever HTTP library the
    client uses (httpx, or the httpx2 that huggingface_hub 2.x ships with), by class
    name so that tether does not import either."""
    names = {klass.__name__ for klass in type(exc).__mro__}
    return isinstance(exc, ConnectionError) or "TransportError" in names
