"""Xet uploads: the write-token route and the CAS routes hf_xet talks to (see xet.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tether.errors import HubNotFoundError
from tether.hub.server import xet
from tether.hub.server.deps import Body, Hub, WritableRepo
from tether.hub.server.routers.repos import API_REPO, GET
from tether.hub.server.schemas import ShardStored, XetToken, XorbStored

router = APIRouter()


@router.api_route(
    API_REPO + "/xet-write-token/{revision:segment}", methods=GET, response_model=XetToken
)
def write_token(hub: Hub, repo: WritableRepo, response: Response) -> XetToken:
    """A short-lived CAS token for this repo, in the body and in the headers hf_xet reads."""
    token, expires, headers = xet.grant(hub, repo.id)
    response.headers.update(headers)
    return XetToken(access_token=token, exp=expires, cas_url=xet.cas_url(hub))


def cas_repo(hub: Hub, authorization: Annotated[str | None, Header()] = None) -> int:
    """The repo (primary key) the request's CAS token was issued for."""
    return xet.check_token(hub.secret, authorization)


CasRepo = Annotated[int, Depends(cas_repo)]


@router.api_route("/_xet/v1/chunks/default-merkledb/{hash:sha256}", methods=GET)
@router.api_route("/_xet/v1/chunks/default/{hash:sha256}", methods=GET)
def dedup_query(repo_pk: CasRepo, hash: str) -> Response:
    """Always 404: this server does no global deduplication."""
    raise HubNotFoundError("no global deduplication on this server")


@router.post("/_xet/v1/xorb/default/{hash:sha256}", response_model=XorbStored)
@router.post("/_xet/v1/xorbs/default/{hash:sha256}", response_model=XorbStored)
async def upload_xorb(hub: Hub, repo_pk: CasRepo, hash: str, body: Body) -> XorbStored:
    inserted = await run_in_threadpool(xet.store_xorb, hub, hash, body)
    return XorbStored(was_inserted=inserted)


@router.post("/_xet/v1/shard", response_model=ShardStored)
@router.post("/_xet/v1/shards", response_model=ShardStored)
@router.post("/_xet/v1/shard/{hash:sha256}", response_model=ShardStored)
@router.post("/_xet/v1/shards/{hash:sha256}", response_model=ShardStored)
async def upload_shard(hub: Hub, repo_pk: CasRepo, body: Body) -> ShardStored:
    """Rebuild and store every file the shard lists (see xet.rebuild_files)."""
    await run_in_threadpool(xet.rebuild_files, hub, body, repo_pk)
    return ShardStored(result=1)


@router.post("/_xet/v1/telemetry")
def telemetry() -> Response:
    return Response(status_code=200)
