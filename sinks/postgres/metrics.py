"""What the metrics side reads from and writes to PostgreSQL.

Reads: the current state of moved ducats (for the hot cache), once the ducat-state sink has
applied the moves (:func:`wait_for_state`). Writes: one metric_history row per snapshot and the daily rollups.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from psycopg_pool import AsyncConnectionPool

from ducats.logs import get_logger
from schemas.ducat_id import ducat_str
from sinks.postgres.ledger_sql import int_array


log = get_logger(__name__)
STATE_POLL = 0.02
STATE_WARN = 10.0


async def wait_for_state(pool: AsyncConnectionPool, seq: int) -> float:
    """Until the ducats' rows show every seq up to ``seq`` that the ledger has decided (the
    ducat-state sink applies the log after the ledger's commit: docs/throughput.md, step 3), so
    the hot cache reads each moved ducat's state after its move. A seq the ledger never decided
    (events published straight to the accepted topic, as the benches and some tests do) is not
    waited for. Waits as long as it takes, saying so every STATE_WARN seconds: without the
    state, the hot cache cannot be right. Returns the seconds waited."""
    started = last_warned = time.monotonic()
    while True:
        async with pool.connection() as conn:
            row = await (await conn.execute(
                """SELECT s.last_seq, l.last_seq FROM ducat_state_position AS s, ledger_state AS l""")).fetchone()
        if row is None or row[0] >= min(seq, row[1]):
            return time.monotonic() - started
        if time.monotonic() - last_warned > STATE_WARN:
            last_warned = time.monotonic()
            log.warning("metrics.waiting_for_state", seq=seq, state_seq=row[0], ledger_seq=row[1],
                        waited_s=round(last_warned - started, 1))
        await asyncio.sleep(STATE_POLL)


async def moved_ducats(pool: AsyncConnectionPool, ids: Sequence[int], *, least: int = 0,
                       above: str = "") -> list[dict[str, Any]]:
    """The stored state of those of ``ids`` that rank above (``least`` transfers, ``above``)
    in the hot cache's order (count, then the id's text bytewise): one array query.

    The hot cache wants only ducats that can enter its top set, so that is its lowest
    member: the others are filtered where they are, not built into rows here."""
    if not ids:
        return []
    async with pool.connection() as conn:
        cur = await conn.execute(
            """SELECT id, holder, transfer_count, consciousness_level, temperature::text, last_transfer_at
               FROM ducats WHERE id = ANY(%(ids)s::text::bigint[]) AND transfer_count >= %(least)s
                AND (transfer_count > %(least)s
                     OR ('BATCH-' || (id / 1000000) || '-' || lpad((id %% 1000000)::text, 6, '0'))
                        COLLATE "C" > %(above)s)""",
            {"ids": int_array(ids), "least": least, "above": above})
        rows = await cur.fetchall()
    return [{"ducatId": ducat_str(r[0]), "transfers": r[2], "holder": r[1], "level": r[3],
             "temperature": r[4], "lastTransferAt": None if r[5] is None else r[5].isoformat()} for r in rows]


async def save_history(pool: AsyncConnectionPool, snapshot: Mapping[str, Any],
                       daily: Sequence[Mapping[str, Any]]) -> None:
    """One metric_history row for this snapshot, and upserts of the changed days."""
    v = snapshot["velocity"]
    ts = dt.datetime.fromisoformat(snapshot["generatedAt"])
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT ducats_ensure_month_partition_of('metric_history', %s)", [ts.date()])
        await conn.execute(
            """INSERT INTO metric_history (ts, seq, supply, circulation, holders, transfers, moves,
                                           velocity_1m, velocity_1h, velocity_1d, snapshot)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            [ts, snapshot["position"]["seq"], snapshot["supply"], snapshot["circulation"],
             snapshot["holders"], snapshot["transfers"], snapshot["moves"], v["1m"]["velocity"],
             v["1h"]["velocity"], v["1d"]["velocity"], orjson.dumps(snapshot).decode()])
        if daily:
            await conn.execute(
                """INSERT INTO daily_metrics (date, metrics)
                   SELECT d, m::jsonb FROM unnest(%s::date[], %s::text[]) AS t(d, m)
                   ON CONFLICT (date) DO UPDATE SET metrics = excluded.metrics, updated_at = now()""",
                [[d["date"] for d in daily], [orjson.dumps(d).decode() for d in daily]])
