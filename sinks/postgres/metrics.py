"""What the metrics side writes to PostgreSQL: one metric_history row per snapshot and the
daily rollups. (The hot cache's ducats are the ducat-state sink's: sinks/postgres/hot_ducats.py.)"""
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
