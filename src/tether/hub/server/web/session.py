"""Sign-in for the web page: the token in an HttpOnly, SameSite=Strict cookie.

A browser has no ``Authorization`` header to send, so the token a person pastes into the
sign-in form is kept in a cookie and read back as if it were that header (tokens.py checks
it, with the same rule as for the API). The cookie is ``HttpOnly`` (no script can read it;
no script runs anyway), ``SameSite=Strict`` (another site's page cannot make the browser
send it) and ``Secure`` when the page came over HTTPS. The token itself is never written
into a page, a URL or a log: it arrives in a POST body and leaves only in ``Set-Cookie``.

A cookie whose token was revoked reads as signed out (the page then clears it), not as an
error: the person did not send credentials on purpose this time.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from tether.errors import HubAuthError
from tether.hub.server.tokens import Identity, authenticate

COOKIE = "tether_hub_token"
#: A signed-in browser stays signed in for 30 days, or until the token is revoked.
MAX_AGE = 30 * 24 * 3600


def web_caller(session: Session, request: Request) -> Identity | None:
    """Who a page is shown to: the cookie's token, else an ``Authorization`` header (a
    script fetching a page), else nobody. A refused cookie token is nobody."""
    token = request.cookies.get(COOKIE)
    if token:
        try:
            return authenticate(session, f"Bearer {token}")
        except HubAuthError:
            return None
    return authenticate(session, request.headers.get("authorization"))


def has_stale_cookie(request: Request, caller: Identity | None) -> bool:
    return caller is None and bool(request.cookies.get(COOKIE))


def sign_in(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def sign_out(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


def same_origin(request: Request) -> bool:
    """Whether a form POST came from this hub's own pages.

    Browsers send ``Origin`` on every POST; one naming another site is a cross-site form
    (which could sign a person in as someone else), refused. Without ``Origin`` (curl, an
    old browser) the POST is allowed: the cookie is SameSite=Strict either way.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this hub, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
