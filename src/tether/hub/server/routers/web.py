"""The web page: the repos list, a repo's card and refs, its files at any revision, its
commits, and sign-in by token (see the ``web`` package for the parts).

Routes are GET only (sign-in and sign-out POST a form) and come last in ``app.ROUTERS``,
so the API, file, LFS and git routes are matched first; a namespace of ``api`` is not a
web page either, so an unknown ``/api/...`` path keeps the API's JSON 404. The page paths
are huggingface.co's: ``/{ns}/{name}``, ``.../tree/{rev}/{path}``, ``.../blob/{rev}/{path}``,
``.../commits/{rev}``, with ``/datasets/`` or ``/spaces/`` before a dataset or a space.

Errors on these routes are pages, not JSON: ``WebRoute`` renders a ``HubError`` as HTML.
A private repo the caller may not read is a plain 404 page, signed in or not, as it is a
404 for a missing one: the page does not tell which.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote

from fastapi import APIRouter, Depends
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tether.errors import HubAuthError, HubError
from tether.hub.server import repos
from tether.hub.server.db import Repo
from tether.hub.server.deps import DB, Body, Hub, readable_repo
from tether.hub.server.tokens import Identity, authenticate
from tether.hub.server.web import session as web_session
from tether.hub.server.web import views
from tether.hub.server.web.card import render_card
from tether.hub.server.web.pages import (
    SECURITY_HEADERS,
    STATIC,
    blob_url,
    page,
    resolve_url,
    tree_url,
)


class _Namespace(Convertor[str]):
    """A namespace on a web page: any segment but ``api``, the API's own prefix."""

    regex = r"(?!api(?:/|$))[^/]+"

    def convert(self, value: str) -> str:
        return unquote(value)

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("webnamespace", _Namespace())


def _error_page(request: Request, exc: HubError) -> Response:
    status = exc.status
    message = exc.message
    if exc.error_code == "RepoNotFound":  # 401 too: the API's answer to anonymous callers
        status, message = 404, "Repository not found."
    heading = {404: "Not found", 403: "Refused", 401: "Sign-in refused"}.get(status, "Error")
    caller = getattr(request.state, "web_caller", None)
    return page(
        "error.html",
        status=status,
        code=status,
        heading=heading,
        message=message,
        caller=caller,
        here=request.url.path,
    )


class WebRoute(APIRoute):
    """A route whose refusals are HTML pages (with the security headers), not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except HubError as exc:
                return _error_page(request, exc)

        return route


router = APIRouter(route_class=WebRoute)


def get_web_caller(request: Request, session: DB) -> Identity | None:
    caller = web_session.web_caller(session, request)
    request.state.web_caller = caller
    return caller


WebCaller = Annotated[Identity | None, Depends(get_web_caller)]


def _with_cookie_fixed(request: Request, caller: Identity | None, response: Response) -> Response:
    """Clear a cookie whose token no longer signs in (revoked), so the page says so."""
    if web_session.has_stale_cookie(request, caller):
        web_session.sign_out(response, request)
    return response


def _repo(request: Request, session: DB, caller: WebCaller) -> Repo:
    """The path's repo if ``caller`` may read it (the API's rule, deps.readable_repo)."""
    return readable_repo(request, session, caller)


WebRepo = Annotated[Repo, Depends(_repo)]


def _crumbs(path: str) -> list[tuple[str, str]]:
    parts = [p for p in path.split("/") if p]
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


@router.get("/")
def index(request: Request, session: DB, caller: WebCaller, search: str = "") -> Response:
    """Every repo the caller may read, newest first, filtered by ``search``."""
    listed = views.readable_repos(session, caller, search)
    response = page("index.html", listed=listed, search=search, caller=caller)
    return _with_cookie_fixed(request, caller, response)


@router.get("/_web/hub.css")
def stylesheet() -> Response:
    css = (STATIC / "hub.css").read_bytes()
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=300"})


@router.get("/_web/signin")
def signin_form(caller: WebCaller, next: str = "/") -> Response:
    return page("signin.html", caller=caller, next=web_session.safe_next(next), problem=None)


@router.post("/_web/signin")
def signin(request: Request, session: DB, body: Body) -> Response:
    """Check the posted token, then keep it in the cookie and go back to ``next``."""
    if not web_session.same_origin(request):
        raise HubAuthError("a sign-in form from another site is refused", status=403)
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    token = (form.get("token") or [""])[0].strip()
    target = web_session.safe_next((form.get("next") or ["/"])[0])
    try:
        identity = authenticate(session, f"Bearer {token}") if token else None
    except HubAuthError:
        identity = None
    if identity is None:
        return page(
            "signin.html",
            status=401,
            caller=None,
            next=target,
            problem="That token does not sign in: it is unknown, revoked or empty.",
        )
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    web_session.sign_in(response, request, token)
    return response


@router.post("/_web/signout")
def signout(request: Request) -> Response:
    if not web_session.same_origin(request):
        raise HubAuthError("a sign-out form from another site is refused", status=403)
    response = RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
    web_session.sign_out(response, request)
    return response


def repo_page(hub: Hub, session: DB, caller: WebCaller, repo: WebRepo) -> Response:
    """The card (README.md) at the main branch, the branches and tags."""
    revision = repos.DEFAULT_BRANCH
    commit = repos.resolve_revision(session, repo, revision)
    tree = repos.tree_of(commit)
    card = None
    readme = tree.get("README.md")
    if readme is not None:
        text = views.text_of(hub.store, readme)
        if text is not None:
            card = render_card(
                text,
                link=lambda url: _in_repo(repo, revision, tree, url, file_url=blob_url),
                image=lambda url: _in_repo(repo, revision, tree, url, file_url=resolve_url),
            )
    refs = repos.list_refs(session, repo)
    return page(
        "repo.html",
        caller=caller,
        repo=repo,
        revision=revision,
        commit=commit,
        tab="card",
        card=card,
        branches=[r for r in refs if r.kind == "branch"],
        tags=[r for r in refs if r.kind == "tag"],
        base_url=hub.base_url,
    )


def _in_repo(
    repo: Repo,
    revision: str,
    tree: dict[str, Any],
    url: str,
    *,
    file_url: Callable[[Repo, str, str], str],
) -> str:
    """A card's relative ``url`` as a page of this repo (a folder's tree, else ``file_url``);
    a path climbing out of the repo is left as written."""
    target, hash_, fragment = url.partition("#")
    path = posixpath.normpath(unquote(target.split("?", 1)[0]))
    if path.startswith("..") or path == ".":
        return url
    folder = any(p.startswith(path + "/") for p in tree)
    out = tree_url(repo, revision, path) if folder else file_url(repo, revision, path)
    return out + hash_ + fragment


def tree_page(
    session: DB, caller: WebCaller, repo: WebRepo, revision: str, path: str = ""
) -> Response:
    """A folder at ``revision`` (branch, tag or commit id); a file's path goes to its view."""
    commit = repos.resolve_revision(session, repo, revision)
    tree = repos.tree_of(commit)
    path = path.strip("/")
    if path in tree:
        return RedirectResponse(blob_url(repo, revision, path), status_code=307)
    entries = views.folder(tree, path)
    if entries is None:
        raise repos.not_found_entry(path)
    return page(
        "tree.html",
        caller=caller,
        repo=repo,
        revision=revision,
        commit=commit,
        tab="files",
        entries=entries,
        crumbs=_crumbs(path),
    )


def blob_page(
    hub: Hub, session: DB, caller: WebCaller, repo: WebRepo, revision: str, path: str
) -> Response:
    """One file: its text when small (escaped), else its size and a download link."""
    commit = repos.resolve_revision(session, repo, revision)
    tree = repos.tree_of(commit)
    entry = tree.get(path)
    if entry is None:
        if views.folder(tree, path) is not None:
            return RedirectResponse(tree_url(repo, revision, path), status_code=307)
        raise repos.not_found_entry(path)
    return page(
        "blob.html",
        caller=caller,
        repo=repo,
        revision=revision,
        commit=commit,
        tab="files",
        path=path,
        entry=entry,
        text=views.text_of(hub.store, entry),
        limit=views.TEXT_LIMIT,
        crumbs=_crumbs(path),
    )


def commits_page(session: DB, caller: WebCaller, repo: WebRepo, revision: str) -> Response:
    """The history from ``revision`` back, newest first (the newest ``LIST_LIMIT``)."""
    head = repos.resolve_revision(session, repo, revision)
    commits = repos.history(session, repo, head, limit=views.LIST_LIMIT + 1)
    return page(
        "commits.html",
        caller=caller,
        repo=repo,
        revision=revision,
        commit=head,
        tab="commits",
        commits=commits[: views.LIST_LIMIT],
        truncated=len(commits) > views.LIST_LIMIT,
    )


# A dataset's or space's pages first, as for the file routes (routers/files.py).
for _prefix, _tag in (("/{repo_type:fileplural}", "_typed"), ("", "")):
    _repo_path = _prefix + "/{namespace:webnamespace}/{name:segment}"
    router.add_api_route(_repo_path, repo_page, methods=["GET"], name="web_repo" + _tag)
    router.add_api_route(
        _repo_path + "/tree/{revision:segment}",
        tree_page,
        methods=["GET"],
        name="web_tree_root" + _tag,
    )
    router.add_api_route(
        _repo_path + "/tree/{revision:segment}/{path:filepath}",
        tree_page,
        methods=["GET"],
        name="web_tree" + _tag,
    )
    router.add_api_route(
        _repo_path + "/blob/{revision:segment}/{path:filepath}",
        blob_page,
        methods=["GET"],
        name="web_blob" + _tag,
    )
    router.add_api_route(
        _repo_path + "/commits/{revision:segment}",
        commits_page,
        methods=["GET"],
        name="web_commits" + _tag,
    )
