"""Network intelligence (docs/network.md): what the newest `ducats analyze` run
found, from Redis, else from PostgreSQL's history."""
from __future__ import annotations

from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from neo4j.exceptions import Neo4jError
from neo4j.exceptions import ServiceUnavailable as Neo4jUnavailable
from psycopg_pool import PoolTimeout
from starlette.responses import Response

from reads import evolution as evolution_reads
from reads import network as network_reads
from reads import patterns
from reads.path import MAX_HOPS
from serving import models
from serving.errors import ApiError, NotFound, Unavailable
from serving.routes.common import ducat_number, json, read_gate, res

router = APIRouter(prefix="/api", tags=["network"], dependencies=[Depends(read_gate)])
MAX_POINTS = 2000  # per evolution answer: a bucket too narrow for the hours asked is widened


async def latest(request: Request, *, required: bool = True) -> dict[str, Any] | None:
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
    if found is None and required:
        raise NotFound("no network analysis has run yet: run `ducats analyze`")
    return found


@router.get("/network/intelligence", response_model=None,
            summary="Components, the top holders by influence (PageRank), communities and their growth",
            responses={200: {"model": models.NetworkIntelligence}, **models.errors(400, 401, 403, 404, 429, 503)})
async def intelligence(request: Request, top: Annotated[int, Query(ge=1, le=20)] = 10,
                       communities: Annotated[int, Query(ge=1, le=50)] = 20) -> Response:
    run = await latest(request)
    assert run is not None
    return json({"runId": run["runId"], "computedAt": run["computedAt"], "seq": run["seq"],
                 "positions": run["positions"], "computeMs": run["ms"], "graph": run["graph"],
                 "components": run["components"], "influence": run["influence"][:top],
                 "communityCount": run["communityCount"], "communities": run["communities"][:communities]})


@router.get("/consciousness/evolution", response_model=None,
            summary="Levels and stages over time, or one ducat's own evolution (?ducat=)",
            responses={200: {"model": models.Evolution}, **models.errors(400, 401, 403, 404, 429, 503)})
async def evolution(request: Request,
                    ducat: Annotated[str | None, Query(pattern=models.DUCAT_ID, max_length=24,
                                                       description="BATCH-<batch>-<6-digit seq>")] = None,
                    hours: Annotated[int, Query(ge=1, le=24 * 31)] = 24,
                    bucket: Annotated[Literal["1m", "5m", "15m", "1h", "6h", "1d"], Query()] = "1h",
                    limit: Annotated[int, Query(ge=1, le=5000, description="one ducat: its first N transfers")] = 1000
                    ) -> Response:
    r = res(request)
    if ducat is not None:
        number = ducat_number(ducat)
        async with r.guards.postgres():
            found = await evolution_reads.ducat(r.pool, number, limit=limit)
        if found is None:
            raise NotFound(f"no ducat {ducat} was minted")
        return json({"scope": "ducat", **found})
    chosen: str = bucket
    sizes = list(evolution_reads.BUCKETS)  # narrowest first
    while hours * 3600 // evolution_reads.BUCKETS[chosen] > MAX_POINTS and chosen != sizes[-1]:
        chosen = sizes[sizes.index(chosen) + 1]  # at most MAX_POINTS points: the next wider bucket
    async with r.guards.postgres():
        found = await evolution_reads.distribution(r.pool, hours=hours, bucket=chosen)
    return json({"scope": "supply", "requestedBucket": bucket, **found})


@router.get("/patterns/emerging", response_model=None,
            summary="Fast-growing communities, velocity spikes, cascades and hot clusters, with their numbers",
            responses={200: {"model": models.Emerging}, **models.errors(400, 401, 403, 429, 503)})
async def emerging(request: Request) -> Response:
    r = res(request)
    run = await latest(request, required=False)
    snapshot = None
    try:
        snapshot = r.feed.current()[0].snapshot
    except ApiError:
        snapshot = None
    async with r.guards.postgres():
        cascades = await patterns.cascades(r.pool)
    clusters: dict[str, Any] = {"clusters": [], "computedAt": None}
    try:
        async with r.guards.postgres():
            clusters = await patterns.hot_clusters(r.pool, r.redis, r.keys)
    except Unavailable:
        pass
    return json({"growingCommunities": patterns.growing(run), "velocitySpikes": patterns.velocity_spikes(snapshot),
                 "cascades": cascades, "hotClusters": clusters["clusters"], "hotClustersAt": clusters["computedAt"],
                 "analysis": None if run is None else {"runId": run["runId"], "computedAt": run["computedAt"]},
                 "rules": {"growing": f"size >= {patterns.GROWING} x the matched community's previous size",
                           "velocitySpike": f"a window's velocity >= {patterns.SPIKE} x the previous window's, "
                                            f"with >= {patterns.SPIKE_MIN_MOVES} moves",
                           "cascade": "ducats/domain/cascade.py",
                           "hotCluster": "communities by their edges active in the last hour "
                                         f"(recomputed at most every {patterns.HOT_TTL:.0f} s)"}})


Holder = Annotated[str, Query(min_length=1, max_length=128, pattern=models.TEXT)]


@router.get("/network/path", response_model=None,
            summary="The shortest transfer path between two holders (Neo4j when on, else igraph)",
            responses={200: {"model": models.NetworkPath}, **models.errors(400, 401, 403, 404, 429, 503)})
async def path(request: Request, from_: Annotated[str, Query(alias="from", min_length=1, max_length=128,
                                                              pattern=models.TEXT)],
               to: Holder) -> Response:
    r = res(request)
    try:  # no PostgreSQL budget: the igraph engine loads the whole edge list now and then
        found = await r.paths.path(from_, to)
    except (psycopg.Error, PoolTimeout) as exc:
        raise Unavailable("postgres", f"the edges could not be read: {exc}") from None
    except (OSError, Neo4jError, Neo4jUnavailable) as exc:
        raise Unavailable("neo4j", f"Neo4j at {r.settings.neo4j_url} did not answer: {exc}") from None
    if found is None:
        raise NotFound(f"no transfer path from {from_} to {to} within {MAX_HOPS} hops")
    return json({"from": from_, "to": to, "path": found, "hops": len(found) - 1, "engine": r.paths.engine})
