"""Network intelligence (docs/network.md): what the newest `ducats analyze` run
found, from Redis, else from PostgreSQL's history."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from reads import network as network_reads
from serving import models
from serving.errors import NotFound, Unavailable
from serving.routes.common import json, read_gate, res

router = APIRouter(prefix="/api", tags=["network"], dependencies=[Depends(read_gate)])


async def latest(request: Request) -> dict[str, Any]:
    r = res(request)
    found: dict[str, Any] | None = None
    try:
        async with r.guards.redis():
            found = await network_reads.latest_cached(r.redis, r.keys)
    except Unavailable:
        found = None
    if found is None:
        async with r.guards.postgres():
            found = await network_reads.latest_stored(r.pool)
    if found is None:
        raise NotFound("no network analysis has run yet: run `ducats analyze`")
    return found


@router.get("/network/intelligence", response_model=None,
            summary="Components, the top holders by influence (PageRank), communities and their growth",
            responses={200: {"model": models.NetworkIntelligence}, **models.errors(400, 401, 403, 404, 429, 503)})
async def intelligence(request: Request, top: Annotated[int, Query(ge=1, le=20)] = 10,
                       communities: Annotated[int, Query(ge=1, le=50)] = 20) -> Response:
    run = await latest(request)
    return json({"runId": run["runId"], "computedAt": run["computedAt"], "seq": run["seq"],
                 "positions": run["positions"], "computeMs": run["ms"], "graph": run["graph"],
                 "components": run["components"], "influence": run["influence"][:top],
                 "communityCount": run["communityCount"], "communities": run["communities"][:communities]})
