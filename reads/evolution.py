"""Consciousness over time, for GET /api/consciousness/evolution.

- The whole money supply: the distribution of levels (deciles) and stages, from
  the snapshots the pipeline keeps in ``metric_history`` (one per publication),
  the last one of each time bucket: ``time_bucket`` where TimescaleDB is in the
  database, ``date_bin`` (PostgreSQL's native equivalent) otherwise.
- One ducat: its level, stage and awareness after each of its transfers,
  replayed from its moves (``ducat_moves``, the impact from ``transactions``)
  by the model's own rule (ducats.domain.consciousness.evolve): the same
  function the ledger ran, so the last point is the ducat's stored state.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ducats.domain.consciousness import DucatState, Move, awareness, evolve
from reads.ledger import connection
from schemas.ducat_id import ducat_str

BUCKETS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21_600, "1d": 86_400}
_timescale: dict[int, bool] = {}


async def _has_timescale(pool: AsyncConnectionPool) -> bool:
    if id(pool) not in _timescale:
        async with connection(pool) as conn:
            row = await (await conn.execute(
                "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")).fetchone()
        _timescale[id(pool)] = bool(row and row[0])
    return _timescale[id(pool)]


async def distribution(pool: AsyncConnectionPool, *, hours: int, bucket: str,
                       now: dt.datetime | None = None) -> dict[str, Any]:
    """Per bucket of the last ``hours``, the last snapshot's levels, stages and temperatures."""
    ts = await _has_timescale(pool)
    width = dt.timedelta(seconds=BUCKETS[bucket])
    origin = ("time_bucket(%(w)s, %(since)s::timestamptz)" if ts else
              "date_bin(%(w)s, %(since)s::timestamptz, TIMESTAMPTZ '2000-01-01 00:00:00+00')")
    end = now or dt.datetime.now(dt.UTC)
    # Per bucket, its last snapshot: one backward index scan each (ts DESC), not a scan of
    # every snapshot in the range (one a second: 86,400 a day).
    async with connection(pool) as conn:
        cur = await conn.execute(
            f"""SELECT b, h.ts, h.seq, h.snapshot->'consciousness', h.snapshot->'temperature', h.supply
                FROM generate_series({origin}, %(until)s::timestamptz, %(w)s) AS b
                CROSS JOIN LATERAL (SELECT ts, seq, snapshot, supply FROM metric_history
                                    WHERE ts >= greatest(b, %(since)s::timestamptz) AND ts < b + %(w)s
                                      AND ts <= %(until)s::timestamptz
                                    ORDER BY ts DESC LIMIT 1) AS h
                ORDER BY b""",
            {"w": width, "since": end - dt.timedelta(hours=hours), "until": end})
        rows = await cur.fetchall()
    points = []
    for b, at, seq, c, temp, supply in rows:
        points.append({"bucket": b.isoformat(), "at": at.isoformat(), "seq": seq, "ducats": supply,
                       "levels": (c or {}).get("levels", {}), "stages": (c or {}).get("stages", {}),
                       "temperature": temp or {}})
    return {"bucket": bucket, "hours": hours, "function": "time_bucket" if ts else "date_bin", "points": points}


async def ducat(pool: AsyncConnectionPool, ducat_id: int, *, limit: int) -> dict[str, Any] | None:
    """One ducat's consciousness after each of its first ``limit`` transfers; None if never minted."""
    async with connection(pool) as conn:
        row = await (await conn.execute(
            """SELECT d.minted_at, m.holder, d.transfer_count, d.consciousness_level, d.stage
               FROM ducats AS d JOIN mints AS m ON m.mint_id = d.mint_id WHERE d.id = %s""",
            [ducat_id])).fetchone()
        if row is None:
            return None
        cur = await conn.execute(
            """SELECT mv.seq, mv.ts, mv.sender, mv.receiver, t.ducat_count, t.consciousness_impact
               FROM (SELECT seq, ts, sender, receiver FROM ducat_moves WHERE ducat_id = %s ORDER BY seq LIMIT %s) AS mv
               JOIN transactions AS t ON t.seq = mv.seq AND t.ts = mv.ts
               ORDER BY mv.seq""", [ducat_id, limit])
        moves = await cur.fetchall()
    minted_at, minter, transfers, level, stage = row
    st = DucatState(id=ducat_id, holder=minter)
    points: list[dict[str, Any]] = [{"seq": None, "timestamp": minted_at.isoformat(), "event": "minted",
                                     "holder": minter, "level": 0.0, "stage": 0, "transfers": 0}]
    for seq, at, sender, receiver, count, impact in moves:
        evolve(st, Move(seq, sender, receiver, count, round(impact, 6), at))
        s, p, n = awareness(st.transfer_count, st.impact_sum, st.network_hops)
        points.append({"seq": seq, "timestamp": at.isoformat(), "event": "transfer", "holder": receiver,
                       "level": st.level, "stage": st.stage, "transfers": st.transfer_count,
                       "awareness": {"self": round(s, 6), "purpose": round(p, 6), "network": round(n, 6)}})
    return {"ducatId": ducat_str(ducat_id), "points": points, "complete": len(moves) == transfers,
            "current": {"level": round(level, 6), "stage": stage, "transfers": transfers}}
