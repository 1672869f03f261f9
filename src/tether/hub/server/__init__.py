"""The hub server: FastAPI app, content-addressed blobs, a git-like repo model in SQL.

Importing this package checks for the ``hub`` extra first, so a missing FastAPI or
SQLAlchemy is one clear MissingExtraError instead of an ImportError deep in a module.
"""

from __future__ import annotations

from tether.errors import require_extra

for _module in ("fastapi", "uvicorn", "sqlalchemy", "alembic"):
    require_extra(_module, "hub")

from tether.hub.server.app import create_app  # noqa: E402
from tether.hub.server.config import ServerConfig  # noqa: E402

__all__ = ["ServerConfig", "create_app"]
