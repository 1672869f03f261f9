"""``tether hub serve``: migrate, make a first token if there is none, run uvicorn (the
app migrates again as it starts: a no-op unless the data directory changed meanwhile)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tether.hub.server.config import ServerConfig
from tether.hub.server.db import Token, make_engine, make_sessionmaker
from tether.hub.server.migrate import upgrade
from tether.hub.server.tokens import create_token


def open_sessions(config: ServerConfig) -> sessionmaker[Session]:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(config.database_url)
    return make_sessionmaker(make_engine(config.database_url))


def first_token(config: ServerConfig, user: str) -> str | None:
    """A new write token for ``user`` when the server has no token at all, else None."""
    sessions = open_sessions(config)
    with sessions() as session:
        if session.scalar(select(Token.id).limit(1)) is not None:
            return None
        return create_token(session, user, "write", name="first")


def run(config: ServerConfig, host: str, port: int) -> None:
    import uvicorn

    from tether.hub.server.app import create_app

    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        # "on", not "auto": a start-up that fails (the migration) stops the server
        # instead of leaving it serving without its state.
        lifespan="on",
    )


def default_data_dir() -> Path:
    return Path.home() / ".cache" / "tether" / "hub"
