"""What a route asks for, as ``Annotated`` dependencies: the state, a session, the caller,
the repo with its access check (the rule is access.py's), the raw body.

A route names what it needs in its signature (``repo: ReadableRepo``, ``caller: Caller``)
and FastAPI builds it once per request: the session is shared by the caller lookup, the
access check and the route, and closes when the route returns. The repo comes from the
path parameters ``repo_type`` (absent on a model's file routes), ``namespace`` and
``name``; they are read from the matched path, never from the query string.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.requests import Request

from tether.errors import HubError
from tether.hub.server import access
from tether.hub.server.db import Repo
from tether.hub.server.repos import get_repo
from tether.hub.server.routing import TYPE_FROM_PLURAL
from tether.hub.server.state import HubState
from tether.hub.server.tokens import Identity, authenticate

RequestT = TypeVar("RequestT", bound=BaseModel)


def get_hub(request: Request) -> HubState:
    """The state ``create_app``'s start-up put on the app."""
    hub: HubState = request.app.state.hub
    return hub


Hub = Annotated[HubState, Depends(get_hub)]


def get_session(hub: Hub) -> Iterator[Session]:
    with hub.session() as session:
        yield session


#: "function" scope: the session closes when the route returns, before a download streams,
#: so a slow client never holds a database connection.
DB = Annotated[Session, Depends(get_session, scope="function")]


def get_caller(
    session: DB, authorization: Annotated[str | None, Header()] = None
) -> Identity | None:
    """Who the request acts as; None without a token, an error for a wrong one."""
    return authenticate(session, authorization)


Caller = Annotated[Identity | None, Depends(get_caller)]


async def get_body(request: Request) -> bytes:
    """The whole body, read on the event loop before a blocking route runs in a thread."""
    return await request.body()


Body = Annotated[bytes, Depends(get_body)]


def readable_repo(request: Request, session: DB, caller: Caller) -> Repo:
    """The path's repo if the caller may read it (access.require_readable)."""
    params = request.path_params
    repo = get_repo(
        session, TYPE_FROM_PLURAL[params.get("repo_type")], params["namespace"], params["name"]
    )
    return access.require_readable(session, caller, repo)


ReadableRepo = Annotated[Repo, Depends(readable_repo)]


def repo_writer(session: DB, repo: ReadableRepo, caller: Caller) -> Identity:
    """The caller, checked for write access to the path's repo."""
    return access.require(session, caller, repo.namespace, access.Level.WRITE)


Writer = Annotated[Identity, Depends(repo_writer)]


def writable_repo(repo: ReadableRepo, _writer: Writer) -> Repo:
    return repo


WritableRepo = Annotated[Repo, Depends(writable_repo)]


def admin_repo(session: DB, repo: ReadableRepo, caller: Caller) -> Repo:
    """The path's repo, checked for admin access (settings)."""
    access.require(session, caller, repo.namespace, access.Level.ADMIN)
    return repo


AdminRepo = Annotated[Repo, Depends(admin_repo)]


def json_body(model: type[RequestT]) -> Any:
    """A dependency giving the body parsed as ``model``.

    Read by hand rather than as a FastAPI body parameter because clients differ in what
    they send: LFS clients ``application/vnd.git-lfs+json``, some calls an empty body for
    ``{}``. A body that does not parse is a 400 in the server's error shape.
    """

    async def parse(request: Request) -> RequestT:
        raw = await request.body()
        try:
            return model.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            raise HubError(
                f"request body does not match {model.__name__}: {exc.errors()[0]['msg']}",
                status=400,
            ) from None

    return Depends(parse)
