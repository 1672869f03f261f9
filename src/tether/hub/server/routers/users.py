"""Who the token belongs to: ``GET /api/whoami-v2``. (Token management is the CLI's.)"""

from __future__ import annotations

from fastapi import APIRouter

from tether.errors import HubAuthError
from tether.hub.server.deps import Caller
from tether.hub.server.schemas import AccessToken, AuthInfo, WhoAmI

router = APIRouter()


@router.api_route("/api/whoami-v2", methods=["GET", "HEAD"], response_model=WhoAmI)
def whoami(caller: Caller) -> WhoAmI:
    if caller is None:
        raise HubAuthError("Invalid user token. No token in Authorization header.")
    return WhoAmI(
        id=caller.user,
        name=caller.user,
        fullname=caller.user,
        auth=AuthInfo(access_token=AccessToken(display_name=caller.token_name, role=caller.scope)),
    )
