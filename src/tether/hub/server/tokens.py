"""Access tokens: random ``hf_`` strings handed out once, stored only as sha256 hashes.

A token has a user (its namespace) and a scope: ``read`` sees private repos of that user
and of the orgs they belong to, ``write`` may also create repos and commit (access.py).
Revoked tokens stay in the table (for the audit trail) with ``revoked_at`` set and are
refused like unknown ones. A token cannot be made for an org's name (orgs.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether.errors import HubAuthError, HubError
from tether.hub.server.db import Token, utcnow
from tether.hub.server.orgs import check_user_name

SCOPES = ("read", "write")


@dataclass(frozen=True)
class Identity:
    """Who a request acts as; never holds the token itself."""

    user: str
    scope: str
    token_name: str

    @property
    def can_write(self) -> bool:
        return self.scope == "write"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: str, scope: str, name: str = "default") -> str:
    """Store a new token's hash and return the token (the only time it is seen)."""
    if scope not in SCOPES:
        raise HubError(f"unknown token scope {scope!r}; use one of {', '.join(SCOPES)}")
    check_user_name(session, user)
    token = "hf_" + secrets.token_urlsafe(30).replace("-", "a").replace("_", "b")
    session.add(Token(user=user, name=name, scope=scope, token_hash=hash_token(token)))
    session.commit()
    return token


def revoke_token(session: Session, *, token: str | None = None, name: str | None = None) -> int:
    """Revoke by token value or by name; returns how many tokens were revoked."""
    query = select(Token).where(Token.revoked_at.is_(None))
    if token is not None:
        query = query.where(Token.token_hash == hash_token(token))
    elif name is not None:
        query = query.where(Token.name == name)
    else:
        raise HubError("give a token or a token name to revoke")
    rows = list(session.scalars(query))
    for row in rows:
        row.revoked_at = utcnow()
    session.commit()
    return len(rows)


def list_tokens(session: Session) -> list[Token]:
    return list(session.scalars(select(Token).order_by(Token.id)))


def authenticate(session: Session, authorization: str | None) -> Identity | None:
    """The identity behind an ``Authorization`` header; None when there is none.

    ``Bearer <token>`` is what huggingface_hub sends; ``Basic`` is what git and git-lfs
    send, with the token as password and any user name (or the token as user name and
    no password), as huggingface.co accepts them. A header that is present but wrong
    raises: the client sent credentials on purpose.
    """
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        value = basic_token(value)
    elif scheme.lower() != "bearer" or not value.strip():
        raise HubAuthError("malformed Authorization header; expected `Bearer <token>`")
    row = session.scalar(select(Token).where(Token.token_hash == hash_token(value.strip())))
    if row is None or row.revoked_at is not None:
        raise HubAuthError("Invalid credentials in Authorization header", error_code=None)
    return Identity(user=row.user, scope=row.scope, token_name=row.name)


def basic_token(value: str) -> str:
    """The token in ``Basic`` credentials: the password, or the user name if no password."""
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise HubAuthError("malformed Basic credentials in Authorization header") from None
    token = password or user
    if not token.strip():
        raise HubAuthError("Basic credentials in Authorization header carry no token")
    return token
