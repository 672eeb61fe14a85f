"""serving/guard.py: the breaker opens on a service's failures, not on this
process's own load. A full read pool (PoolBusy) answers 503 and leaves the
breaker closed; PostgreSQL failing (a PoolTimeout with the pool below its
maximum: it cannot connect) opens it after DUCATS_API_BREAKER_FAILURES."""
from __future__ import annotations

import asyncio
from typing import Any

import psycopg_pool
import pytest

from ducats.settings import load_settings
from reads.ledger import PoolBusy, connection
from serving.errors import Unavailable
from serving.guard import Guards


class Pool:
    """getconn always times out; the stats say whether the pool was full."""

    def __init__(self, *, size: int, available: int, max_size: int = 4) -> None:
        self.stats = {"pool_size": size, "pool_available": available}
        self.max_size, self.timeout = max_size, 0.05

    async def getconn(self) -> Any:
        await asyncio.sleep(0)
        raise psycopg_pool.PoolTimeout("couldn't get a connection after 0.05 sec")

    def get_stats(self) -> dict[str, int]:
        return self.stats


async def _read(guards: Guards, pool: Pool) -> None:
    async with guards.postgres(), connection(pool):  # type: ignore[arg-type]
        raise AssertionError("not reached: no connection")


async def test_a_full_pool_is_shed_without_opening_the_breaker() -> None:
    guards = Guards(load_settings(api_breaker_failures=3))
    for _ in range(10):
        with pytest.raises(Unavailable, match="busy") as caught:
            await _read(guards, Pool(size=4, available=0))
        assert isinstance(caught.value.__cause__, PoolBusy)
    assert guards.states()["postgres"] == "closed"


async def test_a_pool_that_cannot_connect_opens_the_breaker() -> None:
    guards = Guards(load_settings(api_breaker_failures=3))
    for _ in range(3):
        with pytest.raises(Unavailable, match="PoolTimeout"):
            await _read(guards, Pool(size=1, available=0))
    assert guards.states()["postgres"] == "open"
    with pytest.raises(Unavailable, match="circuit open"):
        await _read(guards, Pool(size=4, available=0))
