"""Server settings, resolved once at start-up from the data directory and options."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerConfig:
    """Where the server keeps its state and how it is reached.

    ``public_url`` is what the server writes into URLs it hands out (signed upload URLs, the
    Xet CAS endpoint, repo URLs): clients follow them, so it must be the address they use.
    """

    data_dir: Path
    public_url: str
    db_url: str | None = None
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_prefix: str = "blobs/"

    @property
    def database_url(self) -> str:
        """SQLite (WAL) in the data directory unless a URL (e.g. Postgres) was given."""
        return self.db_url or f"sqlite:///{self.data_dir / 'hub.sqlite3'}"

    def secret(self) -> bytes:
        """The key that signs upload URLs; created on first use, kept in the data directory.

        Kept on disk (mode 0600) so signed URLs stay valid across a restart.
        """
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(secrets.token_bytes(32))
            tmp.chmod(0o600)
            tmp.replace(path)
        return path.read_bytes()

    @property
    def upload_dir(self) -> Path:
        """Partial uploads live here until their hash is checked (same filesystem as blobs)."""
        return self.data_dir / "uploads"
