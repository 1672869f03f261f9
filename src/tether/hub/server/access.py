"""Who may do what in a namespace: the one rule behind every route's access check.

A token acts as its user. The user's level in a namespace is ``admin`` in their own, their
role in an org they belong to (``read``, ``write`` or ``admin``), and nothing elsewhere.
The token's scope caps it: a read-scope token reads, whatever its user's role.

- ``read``: see private repos (info, resolve, tree, paths-info, commits, refs, LFS
  downloads, git clone and fetch). Public repos need no level at all.
- ``write``: commit (and its preupload, LFS and Xet uploads, `git push`), create and
  delete branches and tags, create repos in the namespace.
- ``admin``: settings (visibility), delete a repo, move it in or out of the namespace.

deps.py turns this into the route dependencies (``ReadableRepo``, ``WritableRepo``,
``AdminRepo``); routes that name the namespace in their body call ``require`` directly.
"""

from __future__ import annotations

from enum import IntEnum

from sqlalchemy.orm import Session

from tether.errors import HubAuthError
from tether.hub.server.db import Repo
from tether.hub.server.errors import AccessDeniedError
from tether.hub.server.orgs import memberships, role_in
from tether.hub.server.repos import repo_not_found
from tether.hub.server.tokens import Identity


class Level(IntEnum):
    """What a caller may do in a namespace, each level including the ones below it."""

    NONE = 0
    READ = 1
    WRITE = 2
    ADMIN = 3


ROLE_LEVEL = {"read": Level.READ, "write": Level.WRITE, "admin": Level.ADMIN}


def user_level(session: Session, user: str, namespace: str) -> Level:
    """The user's level in ``namespace``, before any token scope caps it."""
    if user == namespace:
        return Level.ADMIN
    role = role_in(session, user, namespace)
    return ROLE_LEVEL[role] if role else Level.NONE


def level(session: Session, identity: Identity | None, namespace: str) -> Level:
    """What ``identity`` (None: no token) may do in ``namespace``."""
    if identity is None:
        return Level.NONE
    granted = user_level(session, identity.user, namespace)
    return granted if identity.can_write else min(granted, Level.READ)


def private_namespaces(session: Session, identity: Identity | None) -> set[str]:
    """The namespaces whose private repos ``identity`` may read (the same rule as
    ``level``, for listings: every member role reads): its own and its orgs'."""
    if identity is None:
        return set()
    return {identity.user, *(name for name, _ in memberships(session, identity.user))}


def require_readable(session: Session, identity: Identity | None, repo: Repo) -> Repo:
    """``repo`` if ``identity`` may read it; a private repo looks missing to others.

    Without a token the answer is 401 (the client then suggests logging in), with a
    token of a user who may not read it 404, both carrying ``X-Error-Code: RepoNotFound``.
    """
    if repo.private and level(session, identity, repo.namespace) < Level.READ:
        err = repo_not_found(repo.repo_id)
        if identity is None:
            err.status = 401
        raise err
    return repo


def require(session: Session, identity: Identity | None, namespace: str, needed: Level) -> Identity:
    """``identity`` if it has ``needed`` in ``namespace``; 401 without a token, else 403
    (saying whether the token's scope or the user's role falls short)."""
    word = needed.name.lower()
    if identity is None:
        scope = "write" if needed > Level.READ else "read"
        raise HubAuthError(f"this action needs a token with {scope} scope")
    if level(session, identity, namespace) >= needed:
        return identity
    has = user_level(session, identity.user, namespace)
    if has >= needed:
        raise HubAuthError("this token has read scope; the action needs write scope", status=403)
    raise AccessDeniedError(
        f"user {identity.user} needs {word} access to namespace {namespace} "
        f"(has {has.name.lower()})",
        user=identity.user,
        namespace=namespace,
        needed=word,
    )
