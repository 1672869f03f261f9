"""git's smart HTTP protocol: `git clone` and `git fetch` of a hub repo (read only).

``GET .../info/refs?service=git-upload-pack`` advertises the refs and ``POST
.../git-upload-pack`` sends the pack, for ``/{ns}/{name}`` (a model), ``/datasets/...`` and
``/spaces/...``, with or without ``.git``. The protocol itself is dulwich's (stateless RPC,
as ``git http-backend`` speaks it; protocol v0, which git falls back to); this module finds
the repo, checks access with the API's rule, and builds the git view of it (gitrepo.py).

git authenticates with ``Authorization: Basic`` (any user name, the token as password;
tokens.py reads it) and sends credentials only after a 401 carrying a Basic challenge, so
refusals here are ``GitRefusal``: plain text, which git prints as ``remote:`` lines.

Push (``git-receive-pack``) is refused: a pushed commit's id covers its author, e-mail,
time zone and message exactly as the client wrote them, which the hub's commit rows do not
keep, so the hub could only store a different commit and the client's branch would no
longer match the server's. Commits go through the API (``upload_folder``, `tether push`).
"""

from __future__ import annotations

import gzip
import io
from typing import Annotated

from dulwich.errors import GitProtocolError
from dulwich.protocol import ReceivableProtocol
from fastapi import APIRouter, Depends, Header
from starlette.requests import Request
from starlette.responses import Response

from tether.errors import HubError
from tether.hub.server import gitrepo
from tether.hub.server.db import Repo
from tether.hub.server.deps import DB, Body, Hub, readable_repo
from tether.hub.server.errors import GitRefusal
from tether.hub.server.tokens import authenticate

router = APIRouter()
UPLOAD_PACK = "git-upload-pack"
PUSH_REFUSED = (
    "this hub does not accept git push; commit with huggingface_hub "
    "(upload_folder, create_commit) or `tether push`"
)


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


def _no_cache(content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type, "Cache-Control": "no-cache, max-age=0, must-revalidate"}


def info_refs(hub: Hub, session: DB, request: Request, repo: GitReadable) -> Response:
    """The ref advertisement that starts a clone or fetch."""
    service = request.query_params.get("service")
    if service == "git-receive-pack":
        raise GitRefusal(PUSH_REFUSED, status=403)
    if service != UPLOAD_PACK:
        raise GitRefusal("only git's smart HTTP protocol is served (service=git-upload-pack)")
    git = gitrepo.build(session, hub.store, repo, blobs=False)
    out = io.BytesIO()
    handler = gitrepo.UploadPack(
        gitrepo.OneRepoBackend(git.repo),
        ["/"],
        ReceivableProtocol(io.BytesIO().read, out.write),
        stateless_rpc=True,
        advertise_refs=True,
    )
    handler.proto.write_pkt_line(f"# service={UPLOAD_PACK}\n".encode())
    handler.proto.write_pkt_line(None)
    handler.handle()
    return Response(out.getvalue(), headers=_no_cache(f"application/x-{UPLOAD_PACK}-advertisement"))


def upload_pack(hub: Hub, session: DB, request: Request, repo: GitReadable, body: Body) -> Response:
    """One round of negotiation (wants, haves) and, when it is done, the pack."""
    if request.headers.get("content-type") != f"application/x-{UPLOAD_PACK}-request":
        raise GitRefusal(f"expected Content-Type application/x-{UPLOAD_PACK}-request")
    if request.headers.get("content-encoding") == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            raise GitRefusal("the gzip-encoded request body does not decompress") from None
    git = gitrepo.build(session, hub.store, repo)
    out = io.BytesIO()
    handler = gitrepo.UploadPack(
        gitrepo.OneRepoBackend(git.repo),
        ["/"],
        ReceivableProtocol(io.BytesIO(body).read, out.write),
        stateless_rpc=True,
    )
    try:
        handler.handle()
    except (GitProtocolError, ValueError) as exc:  # a request dulwich cannot follow
        raise GitRefusal(f"git-upload-pack: {exc}") from None
    return Response(out.getvalue(), headers=_no_cache(f"application/x-{UPLOAD_PACK}-result"))


def receive_pack(repo: GitReadable) -> Response:
    raise GitRefusal(PUSH_REFUSED, status=403)


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
            _repo + "/git-receive-pack", receive_pack, methods=["POST"], name="git_push" + _tag
        )
