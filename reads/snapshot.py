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
