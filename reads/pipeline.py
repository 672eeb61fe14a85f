"""How far along the pipeline is: the ledger's lag, and the live workers.

Failures are the project's errors (ducats.connect, ducats.kafka): a service
that does not answer is ServiceUnavailable, one that refuses us ServiceRefused."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from ducats.connect import pg_connect, pg_errors, redis_connect, redis_errors_of
from ducats.errors import ServiceUnavailable
from ducats.kafka import end_offsets
from ducats.keys import RedisKeys
from ducats.settings import Settings


async def ledger_lag(settings: Settings) -> int:
    """Input records not yet applied, plus outbox records not yet published, plus seqs the
    ducat-state sink has not applied yet (so "caught up" includes the ducats' rows)."""
    ends = await end_offsets(settings, [settings.topic_mints, settings.topic_transactions])
    async with await pg_connect(settings.database_url) as conn:
        with pg_errors(settings.database_url, session=True):
            rows = await (await conn.execute("SELECT topic, partition, next_offset FROM ledger_offsets")).fetchall()
            outbox = (await (await conn.execute("SELECT count(*) FROM outbox")).fetchone())[0]  # type: ignore[index]
            state = (await (await conn.execute(
                """SELECT l.last_seq - s.last_seq FROM ledger_state AS l, ducat_state_position AS s""")).fetchone())
    outbox = int(outbox) + max(0, int(state[0])) if state else int(outbox)
    done = {(r[0], r[1]): r[2] for r in rows}
    return sum(max(0, end - done.get(tp, 0)) for tp, end in ends.items()) + int(outbox)


async def wait_caught_up(settings: Settings, timeout: float = 180) -> None:
    """Until the ledger has applied every input record and emptied its outbox."""
    deadline = time.monotonic() + timeout
    while (lag := await ledger_lag(settings)) > 0:
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"the ledger is {lag} records behind after {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def live_workers(settings: Settings) -> list[dict[str, Any]]:
    """The workers whose heartbeat is fresh: ready (tables recovered) and processing."""
    client = await redis_connect(settings.redis_url)
    try:
        with redis_errors_of(settings.redis_url):
            keys = [k async for k in client.scan_iter(match=RedisKeys.of(settings).worker("*"))]
            values = await client.mget(keys) if keys else []
    finally:
        await client.aclose()
    return [orjson.loads(v) for v in values if v]
