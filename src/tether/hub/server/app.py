"""The ASGI app: one catch-all FastAPI route handing the raw path to our router.

HubError subclasses become JSON errors with ``X-Error-Code``/``X-Error-Message`` headers,
which huggingface_hub maps to RepositoryNotFoundError, RevisionNotFoundError,
EntryNotFoundError and friends.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tether.errors import HubError
from tether.hub.server import api, files, lfs, xet
from tether.hub.server.config import ServerConfig
from tether.hub.server.db import make_engine, make_sessionmaker
from tether.hub.server.migrate import upgrade
from tether.hub.server.router import Router, dispatch
from tether.hub.server.state import HubState
from tether.hub.server.storage import BlobStore, LocalBlobStore, S3BlobStore

log = logging.getLogger("tether.hub")
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]


def make_store(config: ServerConfig) -> BlobStore:
    if config.s3_bucket:
        return S3BlobStore(
            config.s3_bucket, endpoint_url=config.s3_endpoint_url, prefix=config.s3_prefix
        )
    return LocalBlobStore(config.data_dir / "blobs")


def error_response(exc: HubError) -> Response:
    headers = {"X-Error-Message": exc.message.replace("\n", " ")[:500]}
    if exc.error_code:
        headers["X-Error-Code"] = exc.error_code
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)


def create_app(config: ServerConfig) -> FastAPI:
    """Build the app; migrates the database to the newest schema first."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    hub = HubState(
        config=config,
        sessions=make_sessionmaker(engine),
        store=make_store(config),
        secret=config.secret(),
    )
    router = Router()
    for module in (api, lfs, xet, files):
        module.register(router, hub)

    app = FastAPI(title="tether hub", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.hub = hub

    @app.api_route("/{_path:path}", methods=METHODS, include_in_schema=False)
    async def everything(request: Request, _path: str) -> Response:
        try:
            response = await dispatch(router, request)
        except HubError as exc:
            return error_response(exc)
        if response is None:
            return error_response(
                HubError(f"no route for {request.method} {request.url.path}", status=404)
            )
        return response

    return app
