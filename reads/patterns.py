"""Emerging patterns, for GET /api/patterns/emerging: each with the numbers that
justify it (docs/network.md).

- growing communities: in the newest analysis, those at least GROWING times the
  size of the community they continue;
- velocity spikes: a velocity window at least SPIKE times the one before it;
- cascades: the newest alerts of the cascade detector;
- hot clusters: the communities with the most edges active in the last hour
  (the hot cache's edges), with how many of their holders those touch.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from ducats.domain.graph import GROWING as GROWING
from ducats.domain.network import SEP
from ducats.keys import RedisKeys
from reads.ledger import connection

SPIKE = 2.0           # a window's velocity over the previous one's
SPIKE_MIN_MOVES = 10  # fewer moves in the window: too few to call a spike
HOT_CLUSTERS = 10


def growing(run: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not run:
        return []
    return [{"community": c["id"], "size": c["size"], "previousSize": c["previousSize"], "growth": c["growth"],
             "mergedFrom": c["mergedFrom"], "runId": run["runId"], "computedAt": run["computedAt"]}
            for c in run["communities"] if c["growth"] is not None and c["growth"] >= GROWING]


def velocity_spikes(snapshot: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, v in ((snapshot or {}).get("velocity") or {}).items():
        before, now = v.get("previousVelocity") or 0, v.get("velocity") or 0
        if v.get("moves", 0) >= SPIKE_MIN_MOVES and before > 0 and now / before >= SPIKE:
            out.append({"window": name, "windowStart": v.get("windowStart"), "velocity": now,
                        "previousVelocity": before, "ratio": round(now / before, 3), "moves": v.get("moves"),
                        "previousMoves": v.get("previousMoves")})
    return out


async def cascades(pool: AsyncConnectionPool, limit: int = 10) -> list[dict[str, Any]]:
    async with connection(pool) as conn:
        cur = await conn.execute("SELECT record, acked_at IS NOT NULL FROM alerts ORDER BY started_at DESC LIMIT %s",
                                 [limit])
        return [{**r, "acknowledged": acked} for r, acked in await cur.fetchall()]


HOT_TTL = 2.0  # seconds an API process reuses its hot clusters
_hot: dict[str, tuple[float, dict[str, Any]]] = {}
_hot_lock = asyncio.Lock()


async def hot_clusters(pool: AsyncConnectionPool, client: aioredis.Redis, keys: RedisKeys) -> dict[str, Any]:
    """The hot clusters and when they were computed: at most HOT_TTL seconds ago. One
    computation at a time per process; the requests that arrive meanwhile wait for it."""
    cached = _hot.get(keys.hot_edges)
    if cached is not None and time.monotonic() - cached[0] < HOT_TTL:
        return cached[1]
    async with _hot_lock:
        cached = _hot.get(keys.hot_edges)
        if cached is not None and time.monotonic() - cached[0] < HOT_TTL:
            return cached[1]
        found = {"clusters": await _hot_clusters(pool, client, keys),
                 "computedAt": dt.datetime.now(dt.UTC).isoformat()}
        _hot[keys.hot_edges] = (time.monotonic(), found)
        return found


async def _hot_clusters(pool: AsyncConnectionPool, client: aioredis.Redis, keys: RedisKeys) -> list[dict[str, Any]]:
    """Communities by the hot edges (the last hour's) that touch them: edges with an end in
    the community, and how many of its holders those ends are. Grouped in PostgreSQL."""
    raw: list[bytes] = await client.zrange(keys.hot_edges, 0, -1)  # type: ignore[assignment]
    pairs = [m.decode().split(SEP, 1) for m in raw]
    pairs = [p for p in pairs if len(p) == 2]
    if not pairs:
        return []
    async with connection(pool) as conn:
        cur = await conn.execute(
            """SELECT m.community, count(DISTINCT (x.a, x.b)), count(DISTINCT m.holder)
               FROM unnest(%s::text[], %s::text[]) AS x(a, b)
               CROSS JOIN LATERAL (VALUES (x.a), (x.b)) AS v(h)
               JOIN community_members AS m ON m.holder = v.h
               GROUP BY m.community ORDER BY 2 DESC, 1 LIMIT %s""",
            [[p[0] for p in pairs], [p[1] for p in pairs], HOT_CLUSTERS])
        rows = await cur.fetchall()
    return [{"community": c, "activeEdges": n, "activeHolders": h} for c, n, h in rows]
