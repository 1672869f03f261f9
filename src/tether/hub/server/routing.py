"""Routing on the raw, still percent-encoded request path: the one place that knows.

Starlette decodes ``%2F`` before matching, so a revision like ``refs/pr/1`` or ``feature/x``
(which the client sends as ``refs%2Fpr%2F1``) would split into several path segments. So the
app matches its routes against ``scope["raw_path"]`` (``RawPathMiddleware`` puts it in
``scope["path"]``) and every path parameter uses one of the convertors below, which unquote
the value after matching: one segment stays one value, whatever it contains.

Routes name their parameters ``{repo_type:plural}``, ``{namespace:segment}``,
``{revision:segment}``, ``{path:filepath}``, ``{oid:sha256}``...; a plain ``{x}`` would
arrive still quoted, so none is used.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import unquote

from starlette.convertors import Convertor, register_url_convertor
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: URL plural -> repo type, as huggingface_hub spells them (no prefix: a model).
TYPE_FROM_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space", None: "model"}


class _Unquoted(Convertor[str]):
    """A path parameter matched on the raw path and unquoted afterwards."""

    regex = r"[^/]+"

    def convert(self, value: str) -> str:
        return unquote(value)

    def to_string(self, value: str) -> str:
        return value


class _FilePath(_Unquoted):
    regex = r".+"


class _Plural(_Unquoted):
    regex = r"models|datasets|spaces"


class _FilePlural(_Unquoted):
    """Files of a model have no prefix (``/{ns}/{name}/resolve/...``), the others do."""

    regex = r"datasets|spaces"


class _Sha256(_Unquoted):
    regex = r"[0-9a-f]{64}"


#: Starlette keeps one table of convertors per process; these names are this server's.
CONVERTORS: dict[str, Convertor[Any]] = {
    "segment": _Unquoted(),
    "filepath": _FilePath(),
    "plural": _Plural(),
    "fileplural": _FilePlural(),
    "sha256": _Sha256(),
}
for _name, _convertor in CONVERTORS.items():
    register_url_convertor(_name, _convertor)


class RawPathMiddleware:
    """Hand the router the request path exactly as the client sent it (still quoted)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("raw_path"):
            raw = scope["raw_path"].decode("latin-1").split("?", 1)[0]
            scope = {**scope, "path": raw}
        await self.app(scope, receive, send)


class RequestIdMiddleware:
    """Answer every request with an ``X-Request-Id`` (the client's own, else a new one):
    huggingface_hub quotes it in its error messages, so a user's report names the request
    in the server's logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = (headers.get(b"x-request-id") or uuid.uuid4().hex.encode())[:128]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", request_id)],
                }
            await send(message)

        await self.app(scope, receive, send_with_id)
