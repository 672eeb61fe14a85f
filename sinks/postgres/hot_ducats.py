"""The hot cache's most active ducats, kept by the ducat-state sink (docs/throughput.md, step 5).

After each range commits, the sink sends the ducats the range changed that can
enter the top set (sinks/redis/hot_cache.py), from the states it has just
computed, and the range's last seq as the set's seq: nothing is read back from
PostgreSQL, and the worker neither reads ``ducats`` nor waits for the sink.

The Redis write follows the PostgreSQL commit, so a crash between the two, a
Redis outage or a Redis restart (it keeps nothing) leaves the set's seq behind
the sink's position, or gone. Before it sends anything else, the sink then
rebuilds the set from ``ducats`` (the top by transfers, then the id's text,
bytewise: Redis's order), with the position read in the same snapshot as its
seq. A Redis failure never fails the sink: PostgreSQL is its truth; it logs,
and tries again at most every ``RETRY_EVERY`` seconds.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from redis import exceptions as redis_errors

from ducats.connect import redis_client
from ducats.domain.consciousness import DucatState
from ducats.errors import DucatsError
from ducats.logs import get_logger
from ducats.settings import Settings
from schemas.ducat_id import ducat_str
from sinks.redis.hot_cache import HotCache

__all__ = ["HotDucats", "hot_rows", "top_rows"]
log = get_logger(__name__)
RETRY_EVERY = 1.0  # seconds between attempts while Redis fails, and between looks at it while idle

# The hot cache's order in SQL: transfers, then the id's text (schemas/ducat_id.py) bytewise.
_TOP = """SELECT id, holder, transfer_count, consciousness_level, temperature::text, last_transfer_at
          FROM ducats WHERE transfer_count > 0
          ORDER BY transfer_count DESC,
                   ('BATCH-' || (id / 1000000) || '-' || lpad((id %% 1000000)::text, 6, '0')) COLLATE "C" DESC
          LIMIT %s"""


def _row(ducat: int, transfers: int, holder: str, level: float, temperature: str,
         at: dt.datetime | None) -> dict[str, Any]:
    """The hot cache's details of one ducat (README, "Metric formats")."""
    return {"ducatId": ducat_str(ducat), "transfers": transfers, "holder": holder, "level": level,
            "temperature": temperature, "lastTransferAt": None if at is None else at.isoformat()}


def hot_rows(states: Iterable[DucatState]) -> Iterable[dict[str, Any]]:
    """The hot cache's details of each of ``states``, as the sink computed them."""
    for st in states:
        yield _row(st.id, st.transfer_count, st.holder, st.level, st.temperature, st.last_at)


async def top_rows(conn: psycopg.AsyncConnection[Any], n: int) -> tuple[list[dict[str, Any]], int]:
    """The top ``n`` ducats as ``ducats`` holds them, and the sink's position they are as of
    (one snapshot: REPEATABLE READ)."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        await cur.execute("SELECT last_seq FROM ducat_state_position")
        (seq,) = await cur.fetchone()  # type: ignore[misc]
        await cur.execute(_TOP, [n])
        rows = [_row(i, count, holder, round(level, 6), temperature, at)  # level: a real column, at 6 places
                for i, holder, count, level, temperature, at in await cur.fetchall()]
    return rows, int(seq)


class HotDucats:
    """The sink's writer of the hot ducats, on a Redis client of its own."""

    def __init__(self, *, settings: Settings) -> None:
        self.settings = settings
        self.client = redis_client(settings.redis_url)
        self.cache = HotCache(settings=settings, client=self.client)
        self.synced: int | None = None  # the set's seq as this sink last set it; None: look first
        self.retry_at = 0.0

    async def publish(self, conn: psycopg.AsyncConnection[Any], changes: Mapping[int, DucatState] | None,
                      seq: int) -> int | None:
        """After a range's commit (``changes``, up to ``seq``), or with ``changes=None`` when
        the sink is idle: the set's seq afterwards, None while Redis fails. Never raises a
        Redis error."""
        now = time.monotonic()
        if self.synced is None and now < self.retry_at:
            return None
        try:
            if self.synced is not None and changes is not None:  # a range: even one of mints only moves the seq
                await self.cache.refresh_threshold()
                # Only the ducats that rank above the set's lowest member get a row.
                rivals = [st for st in changes.values() if self.cache.can_enter(st.transfer_count, st.id)]
                if await self.cache.record_ducats(hot_rows(rivals), seq=seq, after=self.synced):
                    self.synced = seq
                else:  # Redis's seq is not the one this sink set: rebuild
                    log.warning("state.hot.diverged", seq=seq, expected=self.synced)
                    self.synced = None
            elif self.synced is not None and now >= self.retry_at:  # idle: has Redis restarted empty?
                self.retry_at = now + RETRY_EVERY
                if await self.cache.ducats_seq() != self.synced:
                    self.synced = None
            if self.synced is None:
                self.synced = await self._sync(conn)
            return self.synced
        except (redis_errors.RedisError, OSError) as exc:
            self.synced, self.retry_at = None, time.monotonic() + RETRY_EVERY
            log.warning("state.hot.failed", error=str(exc).splitlines()[0] if str(exc) else repr(exc))
            return None

    async def _sync(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """Rebuild the set unless Redis's seq is the sink's position already."""
        stored = await self.cache.ducats_seq()
        async with conn.transaction():
            row = await (await conn.execute("SELECT last_seq FROM ducat_state_position")).fetchone()
        seq = int(row[0]) if row else 0
        if stored != seq:
            rows, seq = await top_rows(conn, self.settings.hot_ducats)
            await self.cache.replace_ducats(rows, seq=seq)
            log.info("state.hot.rebuilt", ducats=len(rows), seq=seq, was=stored)
        return seq

    async def stop(self) -> None:
        """Close the client. Never raises."""
        with contextlib.suppress(redis_errors.RedisError, OSError, DucatsError):
            await self.client.aclose()
