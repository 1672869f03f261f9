"""What every route shares: config, database sessions, the blob store, the signing key."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from tether.hub.server.config import ServerConfig
from tether.hub.server.db import Repo
from tether.hub.server.storage import BlobStore


@dataclass
class HubState:
    config: ServerConfig
    sessions: sessionmaker[Session]
    store: BlobStore
    secret: bytes

    @property
    def base_url(self) -> str:
        return self.config.public_url.rstrip("/")

    def session(self) -> Session:
        return self.sessions()

    def close(self) -> None:
        """Close the database connections (the app's shutdown)."""
        engine = self.sessions.kw.get("bind")
        if engine is not None:
            engine.dispose()

    def repo_url(self, repo: Repo) -> str:
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        return f"{self.base_url}/{prefix}{repo.repo_id}"
