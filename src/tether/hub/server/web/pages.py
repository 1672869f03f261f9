"""Templates and the headers every web page carries.

Jinja2 with autoescape on for every template: a repo name, a commit title, a file's text
all arrive escaped; only the card's HTML (card.py, rendered with raw HTML off) is marked
safe. URLs are built here, each path segment quoted, so a revision like ``feature/x`` stays
one segment, as routing.py expects.

Every page answers with a Content-Security-Policy that allows no script at all and loads
styles and images from this hub only, ``X-Content-Type-Options: nosniff``, no framing, and
``Cache-Control: no-store`` (a page may list private repos).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from tether.hub.server.db import Repo
from tether.hub.server.web.views import human_size

HERE = Path(__file__).parent
STATIC = HERE / "static"
#: Where the stylesheet is served; ``_`` cannot start a namespace (repos.NAME_RE).
CSS_URL = "/_web/hub.css"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def q(segment: str) -> str:
    """One URL path segment, everything reserved quoted (``/`` included)."""
    return quote(segment, safe="")


def qpath(path: str) -> str:
    """A file path in a URL: each segment quoted, the slashes kept."""
    return "/".join(q(part) for part in path.split("/"))


def repo_url(repo: Repo) -> str:
    prefix = "" if repo.repo_type == "model" else f"/{repo.repo_type}s"
    return f"{prefix}/{q(repo.namespace)}/{q(repo.name)}"


def tree_url(repo: Repo, revision: str, path: str = "") -> str:
    tail = f"/{qpath(path)}" if path else ""
    return f"{repo_url(repo)}/tree/{q(revision)}{tail}"


def blob_url(repo: Repo, revision: str, path: str) -> str:
    return f"{repo_url(repo)}/blob/{q(revision)}/{qpath(path)}"


def resolve_url(repo: Repo, revision: str, path: str) -> str:
    return f"{repo_url(repo)}/resolve/{q(revision)}/{qpath(path)}"


def commits_url(repo: Repo, revision: str) -> str:
    return f"{repo_url(repo)}/commits/{q(revision)}"


ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.globals.update(
    css_url=CSS_URL,
    repo_url=repo_url,
    tree_url=tree_url,
    blob_url=blob_url,
    resolve_url=resolve_url,
    commits_url=commits_url,
    human_size=human_size,
)


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context`` and the security headers."""
    html = ENV.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
