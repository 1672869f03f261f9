"""git's smart HTTP protocol: `git clone`, `git fetch` and `git push` of a hub repo.

``GET .../info/refs?service=git-upload-pack`` advertises the refs and ``POST
.../git-upload-pack`` sends the pack (``git-receive-pack`` the same way receives a push),
for ``/{ns}/{name}`` (a model), ``/datasets/...`` and ``/spaces/...``, with or without
``.git``. The protocol itself is dulwich's (stateless RPC,
as ``git http-backend`` speaks it; protocol v0, which git falls back to); this module finds
the repo, checks access with the API's rule, and builds the git view of it (gitrepo.py).

git authenticates with ``Authorization: Basic`` (any user name, the token as password;
tokens.py reads it) and sends credentials only after a 401 carrying a Basic challenge, so
refusals here are ``GitRefusal``: plain text, which git prints as ``remote:`` lines.

Push needs write access (the API's rule: 401 with a challenge without a token, 403 for a
read-only member or token). The pushed commits land through the API's commit path with
their git objects kept byte for byte, so the API's commit ids are the client's shas;
gitpush.py says what is checked and what is refused. Each ref is reported to git as ok or
with its reason (``! [remote rejected] main -> main (fetch first: ...)``).
"""

from __future__ import annotations

import gzip
import io
from typing import Annotated, Any

from dulwich.errors import GitProtocolError
from dulwich.protocol import ReceivableProtocol
from fastapi import APIRouter, Depends, Header
from starlette.requests import Request
from starlette.responses import Response

from tether.errors import HubError
from tether.hub.server import access, gitpush, gitrepo
from tether.hub.server.db import Repo
from tether.hub.server.deps import DB, Body, Hub, readable_repo
from tether.hub.server.errors import GitRefusal
from tether.hub.server.tokens import Identity, authenticate

router = APIRouter()
UPLOAD_PACK = "git-upload-pack"
RECEIVE_PACK = "git-receive-pack"


def git_repo(
    request: Request, session: DB, authorization: Annotated[str | None, Header()] = None
) -> Repo:
    """The path's repo if the caller may read it (deps.readable_repo's rule), refusing in
    git's shape: 401 with a challenge (no or a wrong token), 404 otherwise."""
    try:
        return readable_repo(request, session, authenticate(session, authorization))
    except HubError as exc:
        raise GitRefusal(exc.message, status=exc.status) from None


GitReadable = Annotated[Repo, Depends(git_repo)]


def git_writer(
    session: DB, repo: GitReadable, authorization: Annotated[str | None, Header()] = None
) -> Identity:
    """The caller, if it may write to the path's repo (access.require), in git's shape."""
    try:
        return access.require(
            session, authenticate(session, authorization), repo.namespace, access.Level.WRITE
        )
    except HubError as exc:
        raise GitRefusal(exc.message, status=exc.status) from None


GitWriter = Annotated[Identity, Depends(git_writer)]


def _no_cache(content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, "Cache-Control": "no-cache, max-age=0, must-revalidate"}


def info_refs(
    hub: Hub,
    session: DB,
    request: Request,
    repo: GitReadable,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """The ref advertisement that starts a clone, fetch or push."""
    service = request.query_params.get("service")
    if service == RECEIVE_PACK:
        git_writer(session, repo, authorization)
    elif service != UPLOAD_PACK:
        raise GitRefusal(
            f"only git's smart HTTP protocol is served (service={UPLOAD_PACK} or {RECEIVE_PACK})"
        )
    git = gitrepo.build(session, hub.store, repo, blobs=False)
    out = io.BytesIO()
    kind = gitpush.ReceivePack if service == RECEIVE_PACK else gitrepo.UploadPack
    handler = kind(
        gitrepo.OneRepoBackend(git.repo),
        ["/"],
        ReceivableProtocol(io.BytesIO().read, out.write),
        stateless_rpc=True,
        advertise_refs=True,
    )
    handler.proto.write_pkt_line(f"# service={service}\n".encode())
    handler.proto.write_pkt_line(None)
    handler.handle()
    return Response(out.getvalue(), headers=_no_cache(f"application/x-{service}-advertisement"))


def _request_body(request: Request, service: str, body: bytes) -> bytes:
    if request.headers.get("content-type") != f"application/x-{service}-request":
        raise GitRefusal(f"expected Content-Type application/x-{service}-request")
    if request.headers.get("content-encoding") == "gzip":
        try:
            return gzip.decompress(body)
        except (OSError, EOFError):
            raise GitRefusal("the gzip-encoded request body does not decompress") from None
    return body


def upload_pack(hub: Hub, session: DB, request: Request, repo: GitReadable, body: Body) -> Response:
    """One round of negotiation (wants, haves) and, when it is done, the pack."""
    body = _request_body(request, UPLOAD_PACK, body)
    git = gitrepo.build(session, hub.store, repo)
    return _serve(gitrepo.UploadPack, UPLOAD_PACK, git, body)


def receive_pack(
    hub: Hub, session: DB, request: Request, repo: GitReadable, writer: GitWriter, body: Body
) -> Response:
    """The ref updates and the pack of a push; the answer reports each ref (gitpush.py).

    The scratch repository holds every blob of the repo, as a thin pack's deltas may
    name any of them."""
    body = _request_body(request, RECEIVE_PACK, body)
    git = gitrepo.build(session, hub.store, repo)
    push = gitpush.Push(session, hub.store, hub.config, repo, git, writer.user)
    return _serve(gitpush.ReceivePack, RECEIVE_PACK, git, body, push=push)


def _serve(
    kind: Any, service: str, git: gitrepo.GitRepo, body: bytes, push: Any = None
) -> Response:
    """Run one stateless-RPC round of dulwich's ``kind`` handler over ``body``."""
    out = io.BytesIO()
    handler = kind(
        gitrepo.OneRepoBackend(git.repo),
        ["/"],
        ReceivableProtocol(io.BytesIO(body).read, out.write),
        stateless_rpc=True,
    )
    if push is not None:
        handler.push = push
    try:
        handler.handle()
    except (GitProtocolError, ValueError) as exc:  # a request dulwich cannot follow
        raise GitRefusal(f"{service}: {exc}") from None
    return Response(out.getvalue(), headers=_no_cache(f"application/x-{service}-result"))


# ``name.git`` first: ``{name:segment}`` would otherwise take the suffix into the name.
for _prefix in ("/{repo_type:plural}/", "/"):
    for _suffix in (".git", ""):
        _repo = _prefix + "{namespace:segment}/{name:segment}" + _suffix
        _tag = f"{_prefix.count('/')}{_suffix}"
        router.add_api_route(
            _repo + "/info/refs", info_refs, methods=["GET"], name="git_refs" + _tag
        )
        router.add_api_route(
            _repo + "/" + UPLOAD_PACK, upload_pack, methods=["POST"], name="git_upload" + _tag
        )
        router.add_api_route(
            _repo + "/" + RECEIVE_PACK, receive_pack, methods=["POST"], name="git_push" + _tag
        )
