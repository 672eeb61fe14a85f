"""reads.ledger.connection: a caller cancelled while the pool hands over a
connection, or while it takes the connection back, does not lose that
connection (it goes back to the pool)."""
from __future__ import annotations

import asyncio
from typing import Any

from reads.ledger import connection


class SlowPool:
    """Hands out a connection after ``delay``; records what came back."""

    def __init__(self, delay: float, put_delay: float = 0) -> None:
        self.delay, self.put_delay, self.out, self.back = delay, put_delay, 0, 0

    async def getconn(self) -> object:
        await asyncio.sleep(self.delay)
        self.out += 1
        return object()

    async def putconn(self, _conn: Any) -> None:
        await asyncio.sleep(self.put_delay)  # psycopg_pool waits for its lock here
        self.back += 1


async def test_a_connection_that_arrives_after_the_caller_gave_up_goes_back() -> None:
    pool = SlowPool(delay=0.05)

    async def caller() -> None:
        async with connection(pool):  # type: ignore[arg-type]
            raise AssertionError("not reached: the caller is cancelled while waiting")

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0.1)
    assert (pool.out, pool.back) == (1, 1)


async def test_a_connection_is_returned_after_use_and_after_an_error() -> None:
    pool = SlowPool(delay=0)
    async with connection(pool):  # type: ignore[arg-type]
        pass
    try:
        async with connection(pool):  # type: ignore[arg-type]
            raise ValueError("boom")
    except ValueError:
        pass
    assert (pool.out, pool.back) == (2, 2)


async def test_a_return_interrupted_by_the_callers_cancellation_still_completes() -> None:
    pool = SlowPool(delay=0, put_delay=0.05)
    used = asyncio.Event()

    async def caller() -> None:
        async with connection(pool):  # type: ignore[arg-type]
            used.set()

    task = asyncio.create_task(caller())
    await used.wait()
    await asyncio.sleep(0.01)  # the caller is now inside putconn
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    await asyncio.sleep(0.1)
    assert (pool.out, pool.back) == (1, 1)
