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


def caught_up(snapshot: dict[str, Any], seq: int) -> bool:
    """Whether ``snapshot`` counts every seq up to ``seq`` and its top circulating ducats (the
    hot cache's, written by the ducat-state sink) are as of ``seq`` or later."""
    position = snapshot["position"]
    return bool(position["seq"] >= seq and position["complete"] and (snapshot.get("topCirculatingAsOfSeq") or 0) >= seq)


async def _top(client: aioredis.Redis, keys: RedisKeys, limit: int) -> tuple[Any, int | None]:
    """The top ``limit`` members with their scores, and the seq they are as of (one MULTI:
    the ducat-state sink writes both in one script, sinks/postgres/hot_ducats.py)."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.get(keys.hot_ducats_seq)
        pipe.zrevrange(keys.hot_ducats, 0, limit - 1, withscores=True)
        seq, top = await pipe.execute()
    return top, None if seq is None else int(seq)


async def top_circulating(client: aioredis.Redis, keys: RedisKeys, limit: int) -> tuple[list[tuple[str, int]], int | None]:
    """The ``limit`` most-transferred ducats of the hot cache, as (ducat id, transfers), and
    the seq they are as of (None before the sink first wrote them)."""
    top, seq = await _top(client, keys, limit)
    return [(d.decode(), int(n)) for d, n in top], seq


async def active_edges(client: aioredis.Redis, keys: RedisKeys) -> int:
    """Holder-to-holder connections used within the last hour of event time."""
    return int(await client.zcard(keys.hot_edges))


async def top_details(client: aioredis.Redis, keys: RedisKeys, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """The ``limit`` most-transferred ducats with their hot-cache details (holder,
    level, temperature, ...), most transferred first, and the seq they are as of."""
    top, seq = await _top(client, keys, limit)
    if not top:
        return [], seq
    ids = [d for d, _ in top]
    details = await client.hmget(keys.hot_ducat, ids)
    out = []
    for (ducat_id, transfers), raw in zip(top, details, strict=True):
        row = orjson.loads(raw) if raw else {}
        out.append({**row, "ducatId": ducat_id.decode(), "transfers": int(transfers)})
    return out, seq


async def hot_ducat(client: aioredis.Redis, keys: RedisKeys, ducat_id: str) -> dict[str, Any] | None:
    """The hot cache's details of one ducat, or None if it is not among the most active."""
    raw = await client.hget(keys.hot_ducat, ducat_id)
    return None if raw is None else orjson.loads(raw)  # type: ignore[no-any-return]
