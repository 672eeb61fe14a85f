"""The hot cache's recent transactions, in chunks of one batch record each, against a
real Redis: a replayed record changes nothing, chunks older than the hour before the
watermark go, and the oldest go while more than DUCATS_HOT_TRANSACTIONS are held,
though never the newest chunk."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis

from ducats.keys import RedisKeys
from ducats.settings import Settings
from sinks.redis.hot_cache import HOUR, HotCache

T0 = 1_800_000_000


def transfers(first: int, n: int, at: int) -> list[dict[str, Any]]:
    return [{"seq": s, "transactionId": f"t{s}", "timestamp": f"ts{s}", "from": "a", "to": "b", "ducatCount": 1,
             "consciousnessImpact": 0.5} for s in range(first, first + n)] + (
        [{"seq": first + n, "mintId": f"m{first}", "count": 5}])  # a mint in the record is not a transaction


async def held(client: aioredis.Redis, keys: RedisKeys) -> dict[str, tuple[float, list[int]]]:
    members: list[tuple[bytes, float]] = await client.zrange(  # type: ignore[assignment]
        keys.hot_tx, 0, -1, withscores=True)
    data = await client.hgetall(keys.hot_tx_data)
    assert {m for m, _ in members} == set(data)
    return {m.decode(): (sc, [t["seq"] for t in orjson.loads(data[m])]) for m, sc in members}


async def test_chunks_are_idempotent_and_kept_within_the_hour_and_the_cap(
        settings_factory: Callable[..., Settings], redis_client: aioredis.Redis) -> None:
    s = settings_factory(hot_transactions=25)
    keys = RedisKeys.of(s)
    hot = HotCache(settings=s, client=redis_client)
    try:
        first = [(0, transfers(1, 10, T0)), (1, transfers(12, 10, T0 + 5))]
        when = {e["seq"]: T0 + (5 if e["seq"] >= 12 else 0) + e["seq"] % 3 for _, r in first for e in r}
        await hot.record_transactions(first, when=when, watermark=T0 + 10)
        chunks = await held(redis_client, keys)
        assert chunks == {"0:1:10": (T0 + 2, list(range(1, 11))), "1:12:10": (T0 + 5 + 2, list(range(12, 22)))}

        await hot.record_transactions(first, when=when, watermark=T0 + 10)  # a replay
        assert await held(redis_client, keys) == chunks

        # 10 more: 30 held > 25, so the oldest chunk goes.
        later = [(0, transfers(23, 10, T0 + 20))]
        await hot.record_transactions(later, when={s: T0 + 20 for s in range(23, 33)}, watermark=T0 + 20)
        assert set(await held(redis_client, keys)) == {"1:12:10", "0:23:10"}

        # An hour on, everything before the horizon goes; one chunk above the cap stays alone.
        big = [(2, transfers(40, 30, T0 + HOUR + 30))]
        await hot.record_transactions(big, when={s: T0 + HOUR + 30 for s in range(40, 70)},
                                      watermark=T0 + HOUR + 30)
        assert list(await held(redis_client, keys)) == ["2:40:30"]
    finally:
        await redis_client.delete(keys.hot_tx, keys.hot_tx_data)
