"""`ducats analyze`: network intelligence over the edges in PostgreSQL, once or
every N seconds (docs/network.md, "Analysis").

A run reads the edges and their positions in one snapshot, computes components,
weighted PageRank and Leiden communities (ducats.domain.graph), matches the
communities against the previous run's, and stores the result: a row of
``analysis_runs`` and the members in PostgreSQL, then the JSON in Redis
(``<prefix>:network:latest``), which the API serves. A run that meets an outage
is logged and tried again at the next tick; nothing half-written is served (the
PostgreSQL write is one transaction, Redis is written after it).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import resource
import time
from typing import Any

import orjson

from ducats import observability as obs
from ducats.connect import pg_connect, pg_errors, redis_connect, redis_errors_of
from ducats.domain.graph import MIN_COMMUNITY, analyze, match
from ducats.errors import DucatsError
from ducats.keys import RedisKeys
from ducats.logs import get_logger
from ducats.settings import Settings
from sinks.postgres import analysis as pg

log = get_logger(__name__)
REPORTED = 50  # communities in the answer (the largest); all are matched and stored


async def run_once(settings: Settings) -> dict[str, Any]:
    """One analysis; returns what it stored (the JSON the API serves)."""
    started = time.perf_counter()
    conn = await pg_connect(settings.database_url, autocommit=True, options="-c timezone=UTC")
    try:
        with pg_errors(settings.database_url, session=True):
            edges, positions = await pg.load_graph(conn)
            previous, sizes, next_id = await pg.previous_run(conn)
            loaded = time.perf_counter()
            result = await asyncio.to_thread(analyze, edges)
            communities, next_id = match(result, previous, sizes, next_id=next_id)
            computed = time.perf_counter()
            out: dict[str, Any] = {
                "computedAt": dt.datetime.now(dt.UTC).isoformat(),
                "seq": max(positions.values(), default=0),
                "positions": {str(p): s for p, s in sorted(positions.items())},
                "ms": round((computed - started) * 1000, 1),
                "loadMs": round((loaded - started) * 1000, 1),
                "graph": {"nodes": result.nodes, "edges": result.edges},
                "components": {"count": result.components, "largest": result.largest_component},
                "influence": [{"holder": h, "pagerank": r} for h, r in result.influence],
                "communityCount": len(communities),
                "communities": [c.summary() for c in communities if c.size >= MIN_COMMUNITY][:REPORTED],
                "communitySizes": {str(c.id): c.size for c in communities},
                "nextCommunityId": next_id,
            }
            await pg.save_run(conn, out, [(h, c.id) for c in communities for h in c.members])
    finally:
        await conn.close()
    public = {k: v for k, v in out.items() if k != "communitySizes"}
    client = await redis_connect(settings.redis_url)
    try:
        with redis_errors_of(settings.redis_url):
            await client.set(RedisKeys.of(settings).network, orjson.dumps(public))
    finally:
        await client.aclose()
    obs.ANALYSIS_SECONDS.observe(out["ms"] / 1000)
    log.info("analyze.run", run=out["runId"], nodes=result.nodes, edges=result.edges,
             components=result.components, communities=len(communities), ms=out["ms"], load_ms=out["loadMs"],
             seq=out["seq"], rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    return public


async def run_every(settings: Settings, every: float, *, stop: asyncio.Event | None = None) -> None:
    """A run every ``every`` seconds until ``stop``; an outage skips a run, never ends the loop."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await run_once(settings)
        except DucatsError as exc:
            if not exc.retriable:
                raise
            log.warning("analyze.skipped", error=str(exc))
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except TimeoutError:
            pass
