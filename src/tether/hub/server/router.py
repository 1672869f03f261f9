"""Routing on the raw, still percent-encoded request path.

Starlette decodes ``%2F`` before matching, so a revision like ``refs/pr/1`` or ``feature/x``
(which the client sends as ``refs%2Fpr%2F1``) would split into several path segments. Here
each route is a regex over ``scope["raw_path"]``; captured groups are unquoted afterwards,
so one segment stays one value.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[..., Awaitable[Response]]

REPO = r"(?P<ns>[^/]+)/(?P<name>[^/]+)"
API_REPO = r"/api/(?P<type>models|datasets|spaces)/" + REPO
FILE_REPO = r"/(?:(?P<type>datasets|spaces)/)?" + REPO


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    """A list of (method, raw-path regex, async handler)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            for m in method.split(","):
                self.routes.append(Route(m, re.compile(pattern + r"$"), handler))
            return handler

        return decorate

    def match(self, method: str, raw_path: str) -> tuple[Handler, dict[str, Any]] | None:
        """The handler and its unquoted path parameters; None when nothing matches."""
        method = "GET" if method == "HEAD" else method
        for route in self.routes:
            if route.method != method:
                continue
            found = route.pattern.match(raw_path)
            if found:
                params = {
                    k: unquote(v) if v is not None else None for k, v in found.groupdict().items()
                }
                return route.handler, params
        return None


def raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else request.url.path
    return path.split("?", 1)[0]


async def dispatch(router: Router, request: Request) -> Response | None:
    found = router.match(request.method, raw_path(request))
    if found is None:
        return None
    handler, params = found
    return await handler(request, **params)
