"""Alembic environment: migrate the database named by the config's sqlalchemy.url."""

from __future__ import annotations

from alembic import context

from tether.hub.server.db import Base, make_engine

config = context.config
engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
