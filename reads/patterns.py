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

import datetime as dt
import time
from collections import Counter
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


HOT_TTL = 2.0  # seconds an API process reuses its hot clusters (10,000 hot edges: about 0.1 s of CPU)
_hot: dict[str, tuple[float, dict[str, Any]]] = {}


async def hot_clusters(pool: AsyncConnectionPool, client: aioredis.Redis, keys: RedisKeys) -> dict[str, Any]:
    """The hot clusters and when they were computed: at most HOT_TTL seconds ago."""
    now = time.monotonic()
    cached = _hot.get(keys.hot_edges)
    if cached is not None and now - cached[0] < HOT_TTL:
        return cached[1]
    found = {"clusters": await _hot_clusters(pool, client, keys), "computedAt": dt.datetime.now(dt.UTC).isoformat()}
    _hot[keys.hot_edges] = (now, found)
    return found


async def _hot_clusters(pool: AsyncConnectionPool, client: aioredis.Redis, keys: RedisKeys) -> list[dict[str, Any]]:
    raw: list[bytes] = await client.zrange(keys.hot_edges, 0, -1)  # type: ignore[assignment]
    edges = [m.decode() for m in raw]
    if not edges:
        return []
    pairs = [e.split(SEP, 1) for e in edges if SEP in e]
    holders = sorted({h for p in pairs for h in p})
    async with connection(pool) as conn:
        cur = await conn.execute("SELECT holder, community FROM community_members WHERE holder = ANY(%s)", [holders])
        community = dict(await cur.fetchall())
    active: Counter[int] = Counter()
    touched: dict[int, set[str]] = {}
    for a, b in pairs:
        for c in {community.get(a), community.get(b)} - {None}:
            active[c] += 1  # type: ignore[index]
            touched.setdefault(c, set()).update(h for h in (a, b) if community.get(h) == c)  # type: ignore[arg-type]
    return [{"community": c, "activeEdges": n, "activeHolders": len(touched[c])}
            for c, n in sorted(active.items(), key=lambda kv: (-kv[1], kv[0]))[:HOT_CLUSTERS]]
