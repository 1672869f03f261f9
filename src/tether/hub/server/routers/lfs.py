"""The Git LFS batch API and the signed upload URLs it hands out (see lfs.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tether.errors import HubIntegrityError
from tether.hub.server import access, lfs, xet
from tether.hub.server.db import Repo, grant_object, has_object
from tether.hub.server.deps import DB, Caller, Hub, ReadableRepo, json_body
from tether.hub.server.schemas import (
    LfsBatch,
    LfsBatchRequest,
    LfsCompleteRequest,
    LfsError,
    LfsObject,
    LfsStored,
)
from tether.hub.server.storage import verify_and_store

router = APIRouter()


class LfsJSONResponse(JSONResponse):
    media_type = "application/vnd.git-lfs+json"


BATCH = "{namespace:segment}/{name:segment}.git/info/lfs/objects/batch"


def batch(
    hub: Hub,
    session: DB,
    repo: ReadableRepo,
    caller: Caller,
    payload: Annotated[LfsBatchRequest, json_body(LfsBatchRequest)],
) -> LfsBatch:
    """Which objects to send and where; downloads need read access, uploads write."""
    if payload.operation == "download":
        return download_batch(hub, session, repo, payload)
    access.require(session, caller, repo.namespace, access.Level.WRITE)
    lfs.sweep_uploads(hub, force=False)
    known = {str(o.oid) for o in payload.objects if has_object(session, repo.id, str(o.oid))}
    transfers = payload.transfers or ["basic"]
    # Xet when the client offers it, as huggingface.co answers (the JavaScript client does;
    # huggingface_hub offers basic and multipart, and hf_xet asks no batch), else multipart.
    transfer: Literal["basic", "multipart", "xet"] = (
        "xet" if "xet" in transfers else "multipart" if "multipart" in transfers else "basic"
    )
    if transfer == "xet":  # one CAS token for the whole batch
        revision = payload.ref.name if payload.ref else "main"
        xet_actions = {"upload": xet.upload_action(hub, repo, revision)}
    objects = []
    for obj in payload.objects:
        oid, size = str(obj.oid), int(obj.size)
        if not lfs.OID_RE.match(oid) or size < 0:
            error = LfsError(code=422, message="invalid oid or size")
            objects.append(LfsObject(oid=oid, size=size, error=error))
        elif oid in known and hub.store.exists(oid) and hub.store.size(oid) == size:
            # Already uploaded to this repo: no actions. Bytes another repo holds must
            # be sent again, so knowing a hash never grants its content.
            objects.append(LfsObject(oid=oid, size=size))
        elif transfer == "xet":
            objects.append(LfsObject(oid=oid, size=size, authenticated=True, actions=xet_actions))
        else:
            todo = lfs.actions(hub, repo.id, oid, size, transfer == "multipart")
            objects.append(LfsObject(oid=oid, size=size, authenticated=True, actions=todo))
    return LfsBatch(transfer=transfer, objects=objects)


def download_batch(hub: Hub, session: DB, repo: Repo, payload: LfsBatchRequest) -> LfsBatch:
    """Where to GET each object (a signed URL), for objects uploaded to this repo; others
    are 404 per object, so a reader of one repo cannot fetch another's bytes by hash."""
    objects = []
    for obj in payload.objects:
        oid, size = str(obj.oid), int(obj.size)
        if not lfs.OID_RE.match(oid) or size < 0:
            error = LfsError(code=422, message="invalid oid or size")
            objects.append(LfsObject(oid=oid, size=size, error=error))
        elif (
            has_object(session, repo.id, oid)
            and hub.store.exists(oid)
            and hub.store.size(oid) == size
        ):
            todo = lfs.download_action(hub, repo.id, oid, size)
            objects.append(LfsObject(oid=oid, size=size, authenticated=True, actions=todo))
        else:
            error = LfsError(code=404, message=f"object {oid} ({size} bytes) does not exist")
            objects.append(LfsObject(oid=oid, size=size, error=error))
    return LfsBatch(transfer="basic", objects=objects)


for _prefix in ("/{repo_type:fileplural}/", "/"):
    router.add_api_route(
        _prefix + BATCH,
        batch,
        methods=["POST"],
        response_model=LfsBatch,
        response_class=LfsJSONResponse,
        name=f"lfs_batch{_prefix.count('/')}",
    )


def signed(request: Request, hub: Hub) -> None:
    lfs.check_signed(hub, request)


OBJECT = "/_lfs/{repo_pk:int}/{oid:sha256}/{size:int}"
Signed = [Depends(signed)]


@router.get(OBJECT, dependencies=Signed)
def get_object(hub: Hub, oid: str, size: int) -> Response:
    """An object's bytes, for the signed download URL of a batch answer."""
    if not hub.store.exists(oid) or hub.store.size(oid) != size:
        raise HubIntegrityError(f"LFS object {oid} ({size} bytes) is not stored", status=404)
    body = hub.store.open_range(oid, 0, size - 1) if size else iter([b""])
    headers = {"Content-Length": str(size)}
    return StreamingResponse(body, headers=headers, media_type="application/octet-stream")


@router.put(OBJECT, dependencies=Signed)
async def put_object(hub: Hub, request: Request, repo_pk: int, oid: str, size: int) -> Response:
    """A whole object (basic transfer): stored when its sha256 is ``oid``."""
    tmp, _sha, got = await lfs.receive(hub, request)
    if got != size:
        tmp.unlink(missing_ok=True)
        raise HubIntegrityError(f"received {got} bytes, announced {size}")
    await run_in_threadpool(verify_and_store, hub.store, tmp, oid)
    await run_in_threadpool(grant_object, hub.sessions, repo_pk, oid)
    return Response(status_code=200)


@router.put(OBJECT + "/part/{n:int}", dependencies=Signed)
async def put_part(
    hub: Hub, request: Request, repo_pk: int, oid: str, size: int, n: int
) -> Response:
    """One part of a multipart transfer, kept until completion; its ETag is its sha256."""
    tmp, sha, _ = await lfs.receive(hub, request)
    target = hub.config.upload_dir / f"{repo_pk}-{oid}" / f"part-{n:05d}"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.replace(target)
    return Response(status_code=200, headers={"ETag": f'"{sha}"'})


@router.post(OBJECT + "/complete", dependencies=Signed, response_model=LfsStored)
def complete(
    hub: Hub,
    repo_pk: int,
    oid: str,
    size: int,
    payload: Annotated[LfsCompleteRequest, json_body(LfsCompleteRequest)],
) -> LfsStored:
    folder = hub.config.upload_dir / f"{repo_pk}-{oid}"
    lfs.join_parts(hub, folder, oid, size, payload.parts)
    grant_object(hub.sessions, repo_pk, oid)
    return LfsStored(oid=oid, size=size)


@router.post(OBJECT + "/verify", dependencies=Signed, response_model=LfsStored)
def verify(hub: Hub, oid: str, size: int) -> LfsStored:
    if not hub.store.exists(oid) or hub.store.size(oid) != size:
        raise HubIntegrityError(f"LFS object {oid} ({size} bytes) is not stored")
    return LfsStored(oid=oid, size=size)
