"""The hot cache's most active ducats, against real PostgreSQL and Redis: the set is the
top DUCATS_HOT_DUCATS by (transfer count, then the id's text, bytewise: Redis's order),
whatever the order the batches came in, and once it is full only the candidates that rank
above its lowest member are read from PostgreSQL and sent to Redis (with ties, a count
threshold alone let every moved ducat in and out again)."""
from __future__ import annotations

import random
from collections.abc import Callable

import psycopg
import redis.asyncio as aioredis

from ducats.connect import pg_pool
from ducats.keys import RedisKeys
from ducats.settings import Settings
from schemas.ducat_id import ducat_str
from sinks.postgres.metrics import moved_ducats
from sinks.postgres.migrate import migrate
from sinks.redis.hot_cache import HotCache

N = 10  # the set's size here (the setting's least)


async def test_the_set_is_the_top_by_count_then_id_and_only_rivals_are_read(
        settings_factory: Callable[..., Settings], database_factory: Callable[[], str],
        redis_client: aioredis.Redis) -> None:
    url = database_factory()
    migrate(url)
    s = settings_factory(hot_ducats=N, database_url=url)
    keys = RedisKeys.of(s)
    rng = random.Random(7)
    # 120 ducats over three batches (ids whose text order is not their numeric order:
    # BATCH-10-... sorts before BATCH-9-...), all at one transfer but three: the set ends
    # with those three and seven of the ties.
    ids = [b * 1_000_000 + i for b in (9, 10, 11) for i in range(1, 41)]
    counts = {d: 1 for d in ids} | {d: 2 for d in rng.sample(ids, 3)}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""INSERT INTO ducats (id, batch, holder, mint_id, minted_at, transfer_count)
                        SELECT i, i / 1000000, 'h', 'm', now(), c FROM unnest(%s::bigint[], %s::int[]) AS u(i, c)""",
                     [list(counts), list(counts.values())])
    pool = await pg_pool(url)
    hot = HotCache(settings=s, client=redis_client)
    try:
        offered = list(ids)
        rng.shuffle(offered)
        read: list[int] = []
        for k in range(0, len(offered), N):  # batches of N moved ducats
            await hot.refresh_threshold()
            rows = await moved_ducats(pool, sorted(offered[k:k + N]), least=hot.threshold, above=hot.lowest)
            read.append(len(rows))
            await hot.record_ducats(rows)
        members: list[tuple[bytes, float]] = await redis_client.zrange(  # type: ignore[assignment]
            keys.hot_ducats, 0, -1, withscores=True)
        expected = sorted(((counts[d], ducat_str(d)) for d in ids), reverse=True)[:N]
        assert sorted(((int(sc), m.decode()) for m, sc in members), reverse=True) == expected
        assert set(await redis_client.hkeys(keys.hot_ducat)) == {m.encode() for _, m in expected}
        # the first batch fills the set; later ones read only what ranks above its lowest member
        assert read[0] == N and sum(read[1:]) < N * (len(read) - 1) / 2, read
    finally:
        await pool.close()
        await redis_client.delete(keys.hot_ducats, keys.hot_ducat)
