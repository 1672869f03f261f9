"""What every route shares: config, database sessions, the blob store, the signing key."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from tether.hub.server.config import ServerConfig
from tether.hub.server.datalock import DataLock
from tether.hub.server.db import Repo
from tether.hub.server.storage import BlobStore


@dataclass
class HubState:
    config: ServerConfig
    sessions: sessionmaker[Session]
    store: BlobStore
    secret: bytes
    lock: DataLock | None = None
    #: When stale uploads were last swept (``time.monotonic()``), see lfs.sweep_uploads.
    swept_at: float = 0.0

    @property
    def base_url(self) -> str:
        return self.config.public_url.rstrip("/")

    def session(self) -> Session:
        return self.sessions()

    def close(self) -> None:
        """Close the database connections and release the data directory (shutdown)."""
        engine = self.sessions.kw.get("bind")
        if engine is not None:
            engine.dispose()
        if self.lock is not None:
            self.lock.release()

    def repo_url(self, repo: Repo) -> str:
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        return f"{self.base_url}/{prefix}{repo.repo_id}"
