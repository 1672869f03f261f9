"""The repo model in SQL: repos, commits (each holding its full file tree), refs, tokens,
organisations and their members.

A commit row is immutable and carries the whole tree as JSON (path -> sha256, size, git blob
id, lfs flag): reading any revision is one row, and a commit becomes visible only when the
transaction that moves its branch commits. SQLite runs in WAL mode so readers never block
the single writer; a Postgres URL works the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Repo(Base):
    __tablename__ = "repos"
    __table_args__ = (UniqueConstraint("repo_type", "namespace", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_type: Mapped[str] = mapped_column(String(16))
    namespace: Mapped[str] = mapped_column(String(96))
    name: Mapped[str] = mapped_column(String(96))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def repo_id(self) -> str:
        return f"{self.namespace}/{self.name}"


class Commit(Base):
    __tablename__ = "commits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), index=True)
    oid: Mapped[str] = mapped_column(String(40), index=True)
    parent_oid: Mapped[str | None] = mapped_column(String(40), nullable=True)
    title: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    tree_json: Mapped[str] = mapped_column(Text)
    #: The git commit object as a client pushed it (migration 0004); None when the hub made
    #: the commit and its object is rebuilt from the fields above.
    git_raw: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class Ref(Base):
    __tablename__ = "refs"
    __table_args__ = (UniqueConstraint("repo_pk", "kind", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # "branch" or "tag"
    name: Mapped[str] = mapped_column(String(255))
    commit_oid: Mapped[str] = mapped_column(String(40))
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(96))
    name: Mapped[str] = mapped_column(String(96))
    scope: Mapped[str] = mapped_column(String(8))  # "read" or "write"
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def __repr__(self) -> str:  # never the hash, let alone the token
        return f"Token(id={self.id}, user={self.user!r}, name={self.name!r}, scope={self.scope!r})"


def make_engine(url: str) -> Engine:
    """An engine with SQLite set to WAL and a busy timeout, so concurrent writers wait."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class RepoObject(Base):
    """A blob whose bytes were uploaded to this repo (see migration 0002)."""

    __tablename__ = "repo_objects"
    __table_args__ = (UniqueConstraint("repo_pk", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_pk: Mapped[int] = mapped_column(ForeignKey("repos.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))


def grant_object(sessions: sessionmaker[Session], repo_pk: int, sha256: str) -> None:
    """Record that ``sha256``'s bytes reached ``repo_pk`` (idempotent)."""
    from sqlalchemy.exc import IntegrityError

    with sessions() as session:
        session.add(RepoObject(repo_pk=repo_pk, sha256=sha256))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()


def has_object(session: Session, repo_pk: int, sha256: str) -> bool:
    from sqlalchemy import select

    query = select(RepoObject.id).where(RepoObject.repo_pk == repo_pk, RepoObject.sha256 == sha256)
    return session.scalar(query) is not None


class Org(Base):
    """An organisation: a namespace owned by its members, not by one user (migration 0003)."""

    __tablename__ = "orgs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(96), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OrgMember(Base):
    """A user's role in an org: ``read``, ``write`` or ``admin`` (see access.py)."""

    __tablename__ = "org_members"
    __table_args__ = (UniqueConstraint("org_pk", "user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_pk: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    user: Mapped[str] = mapped_column(String(96), index=True)
    role: Mapped[str] = mapped_column(String(8))
