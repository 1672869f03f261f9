"""The ASGI app: one router per resource, the raw-path routing, one error shape.

``create_app`` only assembles; nothing touches the data directory until the app starts.
On start (the lifespan) the database is migrated to the newest schema (``migrate.py``)
and the shared state is built; on stop the engine's connections are closed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from tether.hub.server.config import ServerConfig
from tether.hub.server.datalock import DataLock
from tether.hub.server.db import make_engine, make_sessionmaker
from tether.hub.server.errors import install_error_handlers
from tether.hub.server.lfs import sweep_uploads
from tether.hub.server.migrate import upgrade
from tether.hub.server.routers import (
    commits,
    files,
    git,
    lfs,
    listing,
    missing,
    refs,
    repos,
    users,
    web,
    xet,
)
from tether.hub.server.routing import RawPathMiddleware, RequestIdMiddleware
from tether.hub.server.state import HubState
from tether.hub.server.storage import BlobStore, LocalBlobStore, S3BlobStore

log = logging.getLogger("tether.hub")

#: Included in this order: the API and CAS routes, then the file routes, whose
#: ``/{namespace}/{name}/...`` would match a path of any other as well.
ROUTERS = (users, listing, repos, refs, commits, xet, lfs, git, files, missing, web)  # web: last


def make_store(config: ServerConfig) -> BlobStore:
    if config.s3_bucket:
        return S3BlobStore(
            config.s3_bucket, endpoint_url=config.s3_endpoint_url, prefix=config.s3_prefix
        )
    return LocalBlobStore(config.data_dir / "blobs")


def open_state(config: ServerConfig) -> HubState:
    """Lock the data directory (one server each), migrate the database to the newest
    schema, then open what the routes share."""
    lock = DataLock(config.data_dir)
    try:
        upgrade(config.database_url)
        hub = HubState(
            config=config,
            sessions=make_sessionmaker(make_engine(config.database_url)),
            store=make_store(config),
            secret=config.secret(),
            lock=lock,
        )
    except BaseException:
        lock.release()
        raise
    sweep_uploads(hub)
    return hub


def create_app(config: ServerConfig) -> FastAPI:
    """The hub's app for ``config``; it migrates the database when it starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = await run_in_threadpool(open_state, config)
        app.state.hub = hub
        try:
            yield
        finally:
            hub.close()

    app = FastAPI(
        title="tether hub",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
    )
    for module in ROUTERS:
        app.include_router(module.router)
    app.add_middleware(RawPathMiddleware)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app)
    return app
