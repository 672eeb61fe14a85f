"""The ducat-state sink: the accepted log applied to the ducats' state, off the ledger's transaction.

The ledger's transaction writes the log (sinks/postgres/ledger.py); this sink
reads it back by seq (``mints`` and ``transactions``, up to
``ledger_state.last_seq``, so every seq of the range is committed) and applies
it with the consciousness model (ducats.domain.ledger.StateBatch) in seq
order: each moved ducat's holder columns and consciousness, its memories, the
census deltas, and the cooling of the ducats the range did not move. All of it
and the sink's position (``ducat_state_position``: seq and watermark) change in
ONE transaction, so a replay after a crash starts where the last commit ended
and applies every seq once. The position row is locked first (``FOR UPDATE``):
two sinks (a zombie beside a new leader) take turns, and the second finds
nothing left (docs/throughput.md, step 3).

It runs in a child process of the leading ledger (sinks/postgres/state_process.py,
docs/throughput.md step 4; or, with ``DUCATS_STATE_PROCESS=false``, as a task of
the ledger's event loop), woken by each commit of the ledger;
``ducat_state_position.last_seq`` is what the API calls ``asOfSeq``.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ducats import observability as obs
from ducats.connect import pg_connect, pg_errors
from ducats.domain.consciousness import DucatState
from ducats.domain.ledger import StateBatch
from ducats.logs import get_logger
from ducats.settings import Settings
from sinks.errors import LogGap
from sinks.postgres import consciousness_sql as cq
from sinks.postgres import ledger_sql as q
from sinks.postgres.hot_ducats import HotDucats
from sinks.postgres.ledger import KEEPALIVES, SESSION  # the ledger's bounds, on this connection too

__all__ = ["StateReport", "StateSink", "record", "state_position"]
log = get_logger(__name__)
IDLE_WAIT = 1.0  # seconds between looks at the log when no commit woke the sink


@dataclass(slots=True)
class StateReport:
    """One range: the seqs it applied (``first``..``last``; none when ``last`` == ``first`` - 1),
    the moves, the ledger's position when it was read, and the milliseconds per step."""

    first: int = 0
    last: int = 0
    ledger_seq: int = 0
    moves: int = 0
    hot_seq: int | None = None  # the hot ducats' seq in Redis afterwards (None: Redis fails)
    ms: dict[str, float] = field(default_factory=dict)

    @property
    def applied(self) -> int:
        return self.last - self.first + 1

    @contextlib.contextmanager
    def step(self, name: str) -> Any:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round(self.ms.get(name, 0.0) + (time.perf_counter() - started) * 1000, 1)


class StateSink:
    """The sink on ONE connection of its own (the ledger's SESSION settings). Its failures are
    the project's errors (ducats.connect): an outage is ServiceUnavailable, a refusal ServiceRefused."""

    def __init__(self, *, settings: Settings, batch: int | None = None) -> None:
        self.settings = settings
        self.batch = batch or settings.state_batch
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.hot = HotDucats(settings=settings)

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return pg_errors(self.settings.database_url, session=True)

    async def connect(self) -> None:
        self.conn = await pg_connect(self.settings.database_url, options=SESSION, **KEEPALIVES)

    async def stop(self) -> None:
        """Close the connection. Never raises."""
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self.conn.close()
        await self.hot.stop()

    async def apply_once(self) -> StateReport:
        """Apply the next range of the log (at most ``batch`` seqs), then send its hot ducats
        to Redis (sinks/postgres/hot_ducats.py); an empty report when caught up."""
        assert self.conn is not None, "connect() first"
        changes: dict[int, DucatState] | None = None
        with self._errors():
            async with self.conn.transaction(), self.conn.cursor() as cur:
                await cur.execute("SELECT last_seq, watermark FROM ducat_state_position FOR UPDATE")
                position, watermark = await cur.fetchone()  # type: ignore[misc]
                await cur.execute("SELECT last_seq FROM ledger_state")
                (ledger_seq,) = await cur.fetchone()  # type: ignore[misc]
                report = StateReport(first=position + 1, last=position, ledger_seq=ledger_seq)
                if ledger_seq > position:
                    report.last = hi = min(ledger_seq, position + self.batch)
                    changes = await self._apply(cur, report, position, hi, watermark)
            with report.step("hot"):  # after the commit: what Redis shows, PostgreSQL has
                report.hot_seq = await self.hot.publish(self.conn, changes, report.last)
        return report

    async def _apply(self, cur: psycopg.AsyncCursor[Any], report: StateReport, lo: int, hi: int,
                     watermark: dt.datetime | None) -> dict[int, DucatState]:
        with report.step("read_log"):
            await cur.execute("SELECT seq, count, ts FROM mints WHERE seq > %s AND seq <= %s", [lo, hi])
            mints = await cur.fetchall()
            await cur.execute("""SELECT seq, sender, receiver, ducat_ids, ts FROM transactions
                                 WHERE seq > %s AND seq <= %s ORDER BY seq""", [lo, hi], binary=True)
            transfers = await cur.fetchall()
        if len(mints) + len(transfers) != hi - lo:
            raise LogGap(f"the accepted log has {len(mints) + len(transfers)} events for seqs {lo + 1}..{hi}, "
                         f"not {hi - lo}: a seq is missing from mints and transactions")
        with report.step("load_ducats"):
            _, states = await q.load_holders(cur, sorted({i for t in transfers for i in t[3]}))
        batch = StateBatch(states=states, watermark=watermark, treasury=self.settings.treasury_set)
        with report.step("rules"):
            events: list[tuple[Any, ...]] = sorted([*mints, *transfers], key=lambda e: e[0]) if mints else transfers
            for e in events:
                if len(e) == 3:
                    batch.mint(e[1], e[2])
                else:
                    batch.move(seq=e[0], sender=e[1], receiver=e[2], ducats=e[3], at=e[4])
                    report.moves += len(e[3])
            batch.finish()
        with report.step("memories"):
            memories = batch.remember(await cq.load_memories(cur, batch.remembering()))  # sets memory_count
        with report.step("ducats"):
            await q.apply_changes(cur, batch.changes)
        with report.step("memories"):
            await cq.write_memories(cur, memories)
        with report.step("cool"):
            await cq.cool_and_count(cur, census=batch.census, previous=watermark, watermark=batch.watermark)
        await cur.execute("UPDATE ducat_state_position SET last_seq = %s, watermark = %s", [hi, batch.watermark])
        return batch.changes

    async def run(self, wake: asyncio.Event, on_report: Callable[[StateReport, float], None] | None = None,
                  stop: asyncio.Event | None = None) -> None:
        """Apply the log for as long as the task lives, or until ``stop`` is set (then it
        returns between two looks, so a range's Redis write follows its commit): a range
        after another while there is a backlog, then wait for ``wake`` (the ledger sets it
        after each commit) or IDLE_WAIT. ``on_report(report, seconds)`` after each look
        (default :func:`record`). Errors leave (the ledger's term decides: a retriable one
        starts a new term)."""
        on_report = on_report or record
        while stop is None or not stop.is_set():
            wake.clear()  # before the read: a commit after it wakes the next wait
            started = time.perf_counter()
            report = await self.apply_once()
            on_report(report, time.perf_counter() - started)
            if report.applied > 0:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), IDLE_WAIT)


def record(report: StateReport, seconds: float) -> None:
    """A range's report on the ledger's /metrics and in its log (``state.batch``)."""
    obs.STATE_SEQ.set(report.last)
    obs.STATE_LAG.set(report.ledger_seq - report.last)
    obs.STATE_HOT_SEQ.set(-1 if report.hot_seq is None else report.hot_seq)
    if report.applied > 0:
        obs.STATE_BATCH_SECONDS.observe(seconds)
        log.info("state.batch", first=report.first, last=report.last, moves=report.moves,
                 behind=report.ledger_seq - report.last, hot_seq=report.hot_seq, ms=round(seconds * 1000, 1),
                 steps=report.ms)


async def state_position(conn: psycopg.AsyncConnection[Any]) -> int:
    """The sink's position: the last seq whose effects the ducats' rows show."""
    row = await (await conn.execute("SELECT last_seq FROM ducat_state_position")).fetchone()
    return int(row[0]) if row else 0

