"""The metric snapshot and the hot cache, as Redis holds them (README, "Metric formats")."""
from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from ducats.keys import RedisKeys


async def snapshot(client: aioredis.Redis, keys: RedisKeys) -> dict[str, Any] | None:
    """The latest snapshot, or None before the first one."""
    raw = await client.get(keys.snapshot)
    return None if raw is None else orjson.loads(raw)  # type: ignore[no-any-return]


async def top_circulating(client: aioredis.Redis, keys: RedisKeys, limit: int) -> list[tuple[str, int]]:
    """The ``limit`` most-transferred ducats of the hot cache, as (ducat id, transfers)."""
    top: Any = await client.zrevrange(keys.hot_ducats, 0, limit - 1, withscores=True)
    return [(d.decode(), int(n)) for d, n in top]


async def active_edges(client: aioredis.Redis, keys: RedisKeys) -> int:
    """Holder-to-holder connections used within the last hour of event time."""
    return int(await client.zcard(keys.hot_edges))


async def top_details(client: aioredis.Redis, keys: RedisKeys, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` most-transferred ducats with their hot-cache details (holder,
    level, temperature, ...), most transferred first."""
    top: Any = await client.zrevrange(keys.hot_ducats, 0, limit - 1, withscores=True)
    if not top:
        return []
    ids = [d for d, _ in top]
    details = await client.hmget(keys.hot_ducat, ids)
    out = []
    for (ducat_id, transfers), raw in zip(top, details, strict=True):
        row = orjson.loads(raw) if raw else {}
        out.append({**row, "ducatId": ducat_id.decode(), "transfers": int(transfers)})
    return out


async def hot_ducat(client: aioredis.Redis, keys: RedisKeys, ducat_id: str) -> dict[str, Any] | None:
    """The hot cache's details of one ducat, or None if it is not among the most active."""
    raw = await client.hget(keys.hot_ducat, ducat_id)
    return None if raw is None else orjson.loads(raw)  # type: ignore[no-any-return]
