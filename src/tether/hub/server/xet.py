"""Xet uploads (placeholder until the CAS routes land)."""

from __future__ import annotations

from tether.hub.server.router import Router
from tether.hub.server.state import HubState


def register(router: Router, hub: HubState) -> None:
    """No Xet routes yet."""
