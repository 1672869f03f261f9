"""What every route needs: config, database sessions, the blob store, and access checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from tether.errors import HubAuthError, HubNotFoundError
from tether.hub.server.config import ServerConfig
from tether.hub.server.db import Repo
from tether.hub.server.repos import get_repo, repo_not_found
from tether.hub.server.storage import BlobStore
from tether.hub.server.tokens import Identity, authenticate

TYPE_FROM_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space", None: "model"}


@dataclass
class HubState:
    config: ServerConfig
    sessions: sessionmaker
    store: BlobStore
    secret: bytes

    @property
    def base_url(self) -> str:
        return self.config.public_url.rstrip("/")

    def session(self) -> Session:
        return self.sessions()

    def identity(self, session: Session, request: Request) -> Identity | None:
        return authenticate(session, request.headers.get("authorization"))

    def repo_url(self, repo: Repo) -> str:
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        return f"{self.base_url}/{prefix}{repo.repo_id}"

    def readable_repo(
        self, session: Session, request: Request, plural: str | None, ns: str, name: str
    ) -> tuple[Repo, Identity | None]:
        """The repo if the caller may read it; private repos look missing to others.

        Without a token the answer is 401 (the client then suggests logging in), with a
        token of another user 404, both carrying ``X-Error-Code: RepoNotFound``.
        """
        identity = self.identity(session, request)
        repo = get_repo(session, TYPE_FROM_PLURAL[plural], ns, name)
        if repo.private and (identity is None or identity.user != repo.namespace):
            err = repo_not_found(repo.repo_id)
            if identity is None:
                err.status = 401
            raise err
        return repo, identity

    def writable_repo(
        self, session: Session, request: Request, plural: str | None, ns: str, name: str
    ) -> tuple[Repo, Identity]:
        repo, identity = self.readable_repo(session, request, plural, ns, name)
        return repo, require_write(identity, repo.namespace)


def require_write(identity: Identity | None, namespace: str) -> Identity:
    if identity is None:
        raise HubAuthError("this action needs a token with write scope")
    if not identity.can_write:
        raise HubAuthError("this token has read scope; the action needs write scope", status=403)
    if identity.user != namespace:
        raise HubAuthError(
            f"user {identity.user} cannot write to namespace {namespace}", status=403
        )
    return identity


def repo_params(params: dict[str, Any]) -> tuple[str | None, str, str]:
    return params.get("type"), params["ns"], params["name"]


def not_found_entry(path: str) -> HubNotFoundError:
    return HubNotFoundError(f"Entry not found: {path}", error_code="EntryNotFound")
