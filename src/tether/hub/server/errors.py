"""How the server answers a refusal: every error is a HubError, rendered by one handler.

The server's HTTP error type is ``tether.errors.HubError`` and its subclasses: each carries
``status`` and ``error_code`` as facts, so domain code (repos.py, tokens.py, lfs.py) raises
the specific error and never builds a response. The handler writes the JSON body and the
``X-Error-Code``/``X-Error-Message`` headers, which huggingface_hub maps to
RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError and friends. A request
no route matches becomes a HubError too, so clients see one shape of error.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from tether.errors import HubAuthError, HubConflictError, HubError, HubNotFoundError


class RepoExistsError(HubConflictError):
    """``create_repo`` of a repo that exists; the answer carries its ``url``, which
    ``create_repo(exist_ok=True)`` returns to the caller."""

    url: str | None = None


class NamespaceTakenError(HubConflictError):
    """A name is a user's and an org's at once (an org named like a user, a token made for an
    org's name, a member named like an org): a namespace is one or the other."""

    default_hint = "Choose another name: one namespace cannot be both a user and an org."
    namespace: str | None = None
    taken_by: str | None = None  # "user" or "org": what holds the name already


class OrgNotFoundError(HubNotFoundError):
    """No organisation has this name (or the user is not one of its members)."""

    default_hint = "Check the name against the organisations and members the hub lists."
    org: str | None = None
    user: str | None = None


class AccessDeniedError(HubAuthError):
    """The caller's user lacks the role a route needs in a namespace (access.py)."""

    status = 403
    default_hint = "An admin of the organisation can give the user a role that allows it."
    user: str | None = None
    namespace: str | None = None
    needed: str | None = None  # "read", "write" or "admin"


class GitRefusal(HubError):
    """A refusal on git's smart HTTP routes (routers/git.py), answered as git expects: plain
    text, which git prints as ``remote:`` lines, and on 401 a Basic challenge, without
    which git never sends the credentials it has."""


def error_response(exc: HubError) -> Response:
    """The JSON answer for ``exc``: ``{"error": message}`` plus the headers clients map."""
    if isinstance(exc, GitRefusal):
        challenge = {"WWW-Authenticate": 'Basic realm="tether hub"'} if exc.status == 401 else {}
        return PlainTextResponse(exc.message + "\n", status_code=exc.status, headers=challenge)
    headers = {"X-Error-Message": exc.message.replace("\n", " ")[:500]}
    if exc.error_code:
        headers["X-Error-Code"] = exc.error_code
    body: dict[str, object] = {"error": exc.message}
    if isinstance(exc, RepoExistsError):
        body["url"] = exc.url
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def _hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    return error_response(exc)


async def _no_route(request: Request, exc: Exception) -> Response:
    """Starlette's 404 (no route) and 405 (no route for this method) in the server's shape;
    both are 404, as a client cannot tell a missing route from a missing method."""
    assert isinstance(exc, HTTPException)
    if exc.status_code not in (404, 405):
        return error_response(HubError(str(exc.detail), status=exc.status_code))
    return error_response(
        HubError(f"no route for {request.method} {request.scope['path']}", status=404)
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HubError, _hub_error)
    app.add_exception_handler(HTTPException, _no_route)
