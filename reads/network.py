"""The network intelligence the API serves: the newest `ducats analyze` run, from
Redis (``<prefix>:network:latest``), else from PostgreSQL's history."""
from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from ducats.keys import RedisKeys


async def latest_cached(client: aioredis.Redis, keys: RedisKeys) -> dict[str, Any] | None:
    raw = await client.get(keys.network)
    return None if raw is None else orjson.loads(raw)  # type: ignore[no-any-return]


async def latest_stored(pool: AsyncConnectionPool) -> dict[str, Any] | None:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT result - 'communitySizes' FROM analysis_runs "
                                        "ORDER BY id DESC LIMIT 1")).fetchone()
    return None if row is None else row[0]  # type: ignore[no-any-return]


async def growth(pool: AsyncConnectionPool, runs: int) -> list[dict[str, Any]]:
    """The graph's size over the last ``runs`` runs, oldest first."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            """SELECT id, computed_at, seq, nodes, edges, components, largest_component, communities
               FROM analysis_runs ORDER BY id DESC LIMIT %s""", [runs])
        rows = await cur.fetchall()
    return [{"runId": r[0], "computedAt": r[1].isoformat(), "seq": r[2], "nodes": r[3], "edges": r[4],
             "components": r[5], "largestComponent": r[6], "communities": r[7]} for r in reversed(rows)]
