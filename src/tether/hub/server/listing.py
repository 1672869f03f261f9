"""Finding repos: ``list_models`` / ``list_datasets`` / ``list_spaces`` and the caller's own
repos, as queries over the repo table that know nothing of HTTP.

A listing is filtered (type, who may read it, ``author``, ``search``, ``filter`` tags),
sorted (``lastModified``, ``createdAt``, ``id``; ``downloads``, ``likes`` and
``trendingScore`` are all 0 here, so they fall back to the tie-break) and cut into pages.
A page ends with a **cursor**: the sort key and row id of its last repo, so the next page
starts strictly after it. Unlike an offset, a cursor neither repeats nor skips a repo when
others are created or committed to while a client pages.

Sorting happens in Python over the matching rows (one joined query, never the trees): a
team hub holds thousands of repos, not millions, and this keeps ``lastModified`` (the
main branch head's commit time) exact for SQLite and Postgres alike.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from tether.errors import HubError
from tether.hub.server import access
from tether.hub.server.db import Commit, Ref, Repo
from tether.hub.server.repos import DEFAULT_BRANCH
from tether.hub.server.tokens import Identity

#: What the client may send as ``sort`` (huggingface_hub writes these camelCase names).
SORTS = ("lastModified", "createdAt", "id", "downloads", "likes", "trendingScore")
#: Sorts that list newest/biggest first unless ``direction=1`` says otherwise.
DESCENDING_BY_DEFAULT = frozenset(
    {"lastModified", "createdAt", "downloads", "likes", "trendingScore"}
)
MAX_PAGE = 1000


class BadListingError(HubError):
    """A listing parameter the server cannot honour (``sort``, ``direction``, ``limit``,
    ``cursor``); ``parameter`` names it."""

    status = 400

    def __init__(self, message: str, *, parameter: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class Query:
    """One listing request, checked when built (``Query.parse``)."""

    repo_type: str
    author: str | None = None
    search: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    sort: str = "id"
    descending: bool = False
    limit: int = MAX_PAGE
    after: tuple[float | str, int] | None = None

    @classmethod
    def parse(
        cls,
        repo_type: str,
        *,
        author: str | None,
        search: list[str],
        tags: list[str],
        sort: str | None,
        direction: str | None,
        limit: str | None,
        cursor: str | None,
    ) -> Query:
        sort = sort or "id"
        if sort not in SORTS:
            raise BadListingError(
                f"sort must be one of {', '.join(SORTS)}, not {sort!r}", parameter="sort"
            )
        if direction not in (None, "", "1", "-1"):
            raise BadListingError("direction must be 1 or -1", parameter="direction")
        descending = direction == "-1" if direction else sort in DESCENDING_BY_DEFAULT
        try:
            size = int(limit) if limit else MAX_PAGE
        except ValueError:
            raise BadListingError(
                f"limit must be an integer, not {limit!r}", parameter="limit"
            ) from None
        if size < 1:
            raise BadListingError("limit must be at least 1", parameter="limit")
        return cls(
            repo_type=repo_type,
            author=author or None,
            search=tuple(s.lower() for s in search if s),
            tags=tuple(tags),
            sort=sort,
            descending=descending,
            limit=min(size, MAX_PAGE),
            after=decode_cursor(cursor) if cursor else None,
        )


@dataclass(frozen=True)
class Listed:
    """A repo as a listing sees it: the row and its main branch head."""

    repo: Repo
    head_oid: str
    last_modified: datetime

    @property
    def created_at(self) -> datetime:
        return _utc(self.repo.created_at)


@dataclass(frozen=True)
class Page:
    items: list[Listed]
    next_cursor: str | None


def can_read(repo: Repo, namespaces: set[str]) -> bool:
    """Public repos are for everyone; a private one only for callers who may read its
    namespace (``access.private_namespaces``: their own, their orgs')."""
    return not repo.private or repo.namespace in namespaces


def _utc(when: datetime) -> datetime:
    """SQLite hands back naive datetimes; the server only ever writes UTC."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def sort_key(item: Listed, sort: str) -> float | str:
    if sort == "id":
        return item.repo.repo_id
    if sort == "lastModified":
        return item.last_modified.timestamp()
    if sort == "createdAt":
        return item.created_at.timestamp()
    return 0.0  # downloads, likes, trendingScore: not counted by this server


def encode_cursor(key: float | str, pk: int) -> str:
    raw = json.dumps([key, pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float | str, int]:
    try:
        key, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise BadListingError(
            "cursor is not one this server handed out", parameter="cursor"
        ) from None
    if not isinstance(key, (int, float, str)) or not isinstance(pk, int):
        raise BadListingError("cursor is not one this server handed out", parameter="cursor")
    return key, pk


def visible(
    session: Session, caller: Identity | None, repo_type: str | None, author: str | None = None
) -> list[Listed]:
    """Repos the caller may read (of one type, or all), each with its main branch head."""
    query = (
        select(Repo, Commit.oid, Commit.created_at)
        .join(
            Ref,
            and_(Ref.repo_pk == Repo.id, Ref.kind == "branch", Ref.name == DEFAULT_BRANCH),
        )
        .join(Commit, and_(Commit.repo_pk == Repo.id, Commit.oid == Ref.commit_oid))
    )
    if repo_type is not None:
        query = query.where(Repo.repo_type == repo_type)
    if author is not None:
        query = query.where(Repo.namespace == author)
    namespaces = access.private_namespaces(session, caller)
    return [
        Listed(repo=repo, head_oid=oid, last_modified=_utc(when))
        for repo, oid, when in session.execute(query)
        if can_read(repo, namespaces)
    ]


def list_page(session: Session, caller: Identity | None, query: Query) -> Page:
    """One page of ``query``'s answer and the cursor of the next (None on the last)."""
    items = visible(session, caller, query.repo_type, query.author)
    items = [
        item
        for item in items
        if all(term in item.repo.repo_id.lower() for term in query.search) and not query.tags
    ]  # no repo carries tags here, so a tag filter matches none
    items.sort(
        key=lambda item: (sort_key(item, query.sort), item.repo.id), reverse=query.descending
    )
    if query.after is not None:
        after = query.after
        if query.descending:
            items = [i for i in items if (sort_key(i, query.sort), i.repo.id) < after]
        else:
            items = [i for i in items if (sort_key(i, query.sort), i.repo.id) > after]
    page = items[: query.limit]
    next_cursor = None
    if len(items) > query.limit:
        last = page[-1]
        next_cursor = encode_cursor(sort_key(last, query.sort), last.repo.id)
    return Page(items=page, next_cursor=next_cursor)


def as_json_date(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def describe(item: Listed, fields: frozenset[str], tree: dict[str, Any] | None) -> dict[str, Any]:
    """The properties ``fields`` of one listed repo, by the names the client reads.

    ``tree`` (the head commit's files) is needed only for ``siblings`` and ``usedStorage``.
    """
    repo = item.repo
    values: dict[str, Any] = {
        "author": repo.namespace,
        "sha": item.head_oid,
        "lastModified": as_json_date(item.last_modified),
        "createdAt": as_json_date(item.created_at),
        "private": repo.private,
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "downloadsAllTime": 0,
        "likes": 0,
        "trendingScore": 0,
        "tags": [],
    }
    if tree is not None:
        values["siblings"] = [{"rfilename": path} for path in sorted(tree)]
        values["usedStorage"] = sum(entry["size"] for entry in tree.values())
    out: dict[str, Any] = {"_id": f"{repo.id:024x}", "id": repo.repo_id}
    if repo.repo_type == "model":
        out["modelId"] = repo.repo_id
    out.update({k: v for k, v in values.items() if k in fields})
    return out
