"""The hot cache's most active ducats, against real PostgreSQL and Redis: the set is the
top DUCATS_HOT_DUCATS by (transfer count, then the id's text, bytewise: Redis's order),
whatever the order the ducat-state sink's ranges came in; once it is full only the
candidates that rank above its lowest member are sent (with ties, a count threshold alone
let every moved ducat in and out again); a rebuild from ``ducats`` gives the same set with
the sink's position as its seq; and a write that does not follow the seq its writer last
set (Redis restarted empty, a write was lost, a zombie sink came between) changes nothing."""
from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

import psycopg
import redis.asyncio as aioredis

from ducats.connect import pg_connect
from ducats.domain.consciousness import DucatState
from ducats.keys import RedisKeys
from ducats.settings import Settings
from schemas.ducat_id import ducat_str
from sinks.postgres.hot_ducats import hot_rows, top_rows
from sinks.postgres.migrate import migrate
from sinks.redis.hot_cache import HotCache

N = 10  # the set's size here (the setting's least)
AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


async def test_the_set_is_the_top_by_count_then_id_and_never_goes_back(
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
        conn.execute("""INSERT INTO ducats (id, batch, holder, mint_id, minted_at, transfer_count, last_transfer_at)
                        SELECT i, i / 1000000, 'h', 'm', now(), c, %s
                        FROM unnest(%s::bigint[], %s::int[]) AS u(i, c)""", [AT, list(counts), list(counts.values())])
        conn.execute("UPDATE ducat_state_position SET last_seq = 42")
    hot = HotCache(settings=s, client=redis_client)
    expected = sorted(((counts[d], ducat_str(d)) for d in ids), reverse=True)[:N]

    async def members() -> list[tuple[int, str]]:
        found: list[tuple[bytes, float]] = await redis_client.zrange(  # type: ignore[assignment]
            keys.hot_ducats, 0, -1, withscores=True)
        return sorted(((int(sc), m.decode()) for m, sc in found), reverse=True)

    try:
        offered = list(ids)
        rng.shuffle(offered)
        sent: list[int] = []
        # Without a seq (Redis empty) nothing is written: the sink rebuilds first
        assert not await hot.record_ducats(hot_rows([DucatState(id=ids[0], holder="h", transfer_count=1)]),
                                           seq=1, after=0)
        assert await members() == [] and await hot.ducats_seq() is None
        await hot.replace_ducats([], seq=0)
        # a write into a set that is not full yet follows the seq too (it once read as diverged,
        # and the sink rebuilt the set from PostgreSQL after every range)
        first = DucatState(id=ids[0], holder="h", transfer_count=counts[ids[0]], last_at=AT)
        assert await hot.record_ducats(hot_rows([first]), seq=0, after=0)
        assert await members() == [(counts[ids[0]], ducat_str(ids[0]))]
        for k in range(0, len(offered), N):  # ranges of N moved ducats, as the sink sends them
            await hot.refresh_threshold()
            states = [DucatState(id=d, holder="h", transfer_count=counts[d], last_at=AT) for d in offered[k:k + N]]
            rivals = [st for st in states if hot.can_enter(st.transfer_count, st.id)]  # as the sink filters
            sent.append(len(rivals))
            assert await hot.record_ducats(hot_rows(rivals), seq=k + N, after=k)
        assert await members() == expected
        assert set(await redis_client.hkeys(keys.hot_ducat)) == {m.encode() for _, m in expected}
        assert await hot.ducats_seq() == len(offered)
        # the first range fills the set; later ones send only what ranks above its lowest member
        assert sent[0] == N and sum(sent[1:]) < N * (len(sent) - 1) / 2, sent

        # a late write of an older range (a zombie's): it does not follow the seq, so it changes nothing
        top_count, top_id = expected[0]
        stale = DucatState(id=ids[[ducat_str(d) for d in ids].index(top_id)], holder="zombie",
                           transfer_count=top_count + 5, last_at=AT)
        assert not await hot.record_ducats(hot_rows([stale]), seq=N, after=0)
        assert await members() == expected and await hot.ducats_seq() == len(offered)
        assert b"zombie" not in (await redis_client.hget(keys.hot_ducat, top_id) or b"")

        # the rebuild from PostgreSQL (after a crash between the sink's commit and this write,
        # or a Redis restart): the same set, as of the sink's position
        await redis_client.delete(keys.hot_ducats, keys.hot_ducat, keys.hot_ducats_seq)
        async with await pg_connect(url) as aconn:
            rows, seq = await top_rows(aconn, N)
        assert seq == 42 and [(r["transfers"], r["ducatId"]) for r in rows] == expected
        await hot.replace_ducats(rows, seq=seq)
        assert await members() == expected and await hot.ducats_seq() == 42
    finally:
        await redis_client.delete(keys.hot_ducats, keys.hot_ducat, keys.hot_ducats_seq)
