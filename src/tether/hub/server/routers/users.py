"""Who the token belongs to: ``GET /api/whoami-v2``. (Token management is the CLI's.)"""

from __future__ import annotations

from fastapi import APIRouter

from tether.errors import HubAuthError
from tether.hub.server.deps import DB, Caller
from tether.hub.server.orgs import memberships
from tether.hub.server.schemas import AccessToken, AuthInfo, OrgEntry, WhoAmI

router = APIRouter()


@router.api_route("/api/whoami-v2", methods=["GET", "HEAD"], response_model=WhoAmI)
def whoami(session: DB, caller: Caller) -> WhoAmI:
    """The token's user, with the orgs they belong to and their role in each."""
    if caller is None:
        raise HubAuthError("Invalid user token. No token in Authorization header.")
    orgs = [
        OrgEntry(id=name, name=name, fullname=name, role_in_org=role)
        for name, role in memberships(session, caller.user)
    ]
    return WhoAmI(
        id=caller.user,
        name=caller.user,
        fullname=caller.user,
        orgs=orgs,
        auth=AuthInfo(access_token=AccessToken(display_name=caller.token_name, role=caller.scope)),
    )
