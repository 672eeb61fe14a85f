"""What the ledger knows, as the API serves it: a ducat, its provenance, a
holder, recent transactions, the outcome of a transaction or a mint, and the
stored metric rollups.

Every function is one round trip on one pooled connection, answered from an
index (migrations 0001 and 0005): no query here scans a table whose size grows
with the log. Results are plain dicts in the wire's names; timestamps are
RFC 3339 in UTC (the pool's sessions run with timezone=UTC). Ids go in as the
ledger's integers and come out as ``BATCH-<batch>-<seq>`` strings.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import orjson
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ducats.domain.consciousness import document
from schemas.ducat_id import ducat_str

# The columns of one provenance entry, named as on the wire (json_agg keeps the aliases).
_MOVE = 'seq, ts AS "timestamp", sender AS "from", receiver AS "to", transaction_id AS "transactionId"'


def _iso(at: dt.datetime | None) -> str | None:
    return None if at is None else at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@contextlib.asynccontextmanager
async def connection(pool: AsyncConnectionPool) -> AsyncIterator[Any]:
    """A pooled connection that a caller's cancellation cannot lose.

    The API bounds each call with a timeout that cancels the task, and on a
    saturated event loop it can fire while the pool is handing the connection
    over, or taking it back; psycopg_pool then may keep it counted but never
    free again (psycopg#1345, #1275: a cancelled ``putconn`` waiting for the
    pool's lock drops it). So both run shielded: a connection that arrives
    after the caller gave up goes straight back to the pool, and a return
    that the caller's cancellation interrupts finishes by itself."""
    getting = asyncio.ensure_future(pool.getconn())
    try:
        conn = await asyncio.shield(getting)
    except asyncio.CancelledError:
        getting.add_done_callback(lambda t: _give_back(pool, t))
        raise
    except PoolTimeout:
        if busy(pool):
            raise PoolBusy(f"all {pool.max_size} pooled connections were in use for {pool.timeout * 1000:.0f} ms"
                           ) from None
        raise
    try:
        yield conn
    finally:
        await asyncio.shield(_put_back(pool, conn))


class PoolBusy(Exception):  # noqa: N818  (the pool's own name for it is PoolTimeout)
    """No connection came in time because every one was in use: PostgreSQL answers, the
    pool is full. Load to shed, not a failure of PostgreSQL (PoolTimeout with the pool below
    its maximum is: it could not connect)."""


def busy(pool: AsyncConnectionPool) -> bool:
    """The pool is at its maximum size and has no free connection."""
    stats = pool.get_stats()
    return stats.get("pool_size", 0) >= pool.max_size and stats.get("pool_available", 0) == 0


def _put_back(pool: AsyncConnectionPool, conn: Any) -> asyncio.Future[Any]:
    """``pool.putconn(conn)`` as a task that is kept (referenced) until it is done."""
    _RETURNING.add(returning := asyncio.ensure_future(pool.putconn(conn)))
    returning.add_done_callback(_RETURNING.discard)
    return returning


def _give_back(pool: AsyncConnectionPool, task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is None:
        _put_back(pool, task.result())


_RETURNING: set[asyncio.Future[Any]] = set()


async def _one(pool: AsyncConnectionPool, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    async with connection(pool) as conn:
        return await (await conn.execute(query, params)).fetchone()  # type: ignore[no-any-return]


async def _all(pool: AsyncConnectionPool, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    async with connection(pool) as conn:
        return await (await conn.execute(query, params)).fetchall()  # type: ignore[no-any-return]


# The ducat-state sink's position and the ledger's, read in the same snapshot as the rows they qualify
# (docs/throughput.md, step 3): the ducats' rows show the log up to asOfSeq exactly.
_POSITIONS = """(SELECT last_seq FROM ducat_state_position), (SELECT last_seq FROM ledger_state)"""


async def ducat(pool: AsyncConnectionPool, ducat_id: int, *, transfers: int = 10,
                memories: int = 20) -> dict[str, Any] | None:
    """A ducat's state, its consciousness document, its ``transfers`` latest moves and
    its ``memories`` most significant memories; None if no such ducat was minted."""
    row = await _one(pool, f"""
        SELECT d.holder, d.previous_holder, d.mint_id, d.minted_at, d.transfer_count, d.last_tx_seq,
               d.last_transfer_at, d.consciousness_level, d.stage, d.temperature::text, d.network_hops,
               d.impact_sum, d.last_evolution,
               (SELECT coalesce(json_agg(m ORDER BY m.seq DESC), '[]') FROM (
                    SELECT {_MOVE} FROM ducat_moves WHERE ducat_id = %(id)s ORDER BY seq DESC LIMIT %(t)s) AS m),
               (SELECT coalesce(json_agg(x ORDER BY x.significance DESC, x."memoryId"), '[]') FROM (
                    SELECT memory_id AS "memoryId", created_at AS "createdAt", kind, counterparty, memory,
                           significance, occurrences, compressed
                    FROM ducat_memories WHERE ducat_id = %(id)s
                    ORDER BY significance DESC, memory_id LIMIT %(m)s) AS x),
               {_POSITIONS}
        FROM ducats AS d WHERE d.id = %(id)s""", {"id": ducat_id, "t": transfers, "m": memories})
    if row is None:
        return None
    (holder, previous, mint_id, minted_at, count, last_seq, last_at, level, stage, temperature, hops,
     impact_sum, last_evolution, recent, remembered, as_of, ledger_seq) = row
    level = round(level, 6)  # a real column: shown, and the resonance computed, at 6 places
    consciousness = document(ducat_id, transfer_count=count, impact_sum=impact_sum, network_hops=hops, stage=stage,
                             level=level, last_evolution=_iso(last_evolution))
    return {"ducatId": ducat_str(ducat_id), "holder": holder, "previousHolder": previous, "mintId": mint_id,
            "mintedAt": _iso(minted_at), "transfers": count, "lastSeq": last_seq, "lastTransferAt": _iso(last_at),
            "level": level, "stage": stage, "temperature": temperature, "networkHops": hops,
            "consciousness": consciousness, "recentTransfers": _decoded(recent), "memories": _decoded(remembered),
            "asOfSeq": as_of, "ledgerSeq": ledger_seq}


def _decoded(value: Any) -> Any:
    # json_agg arrives decoded by psycopg's json loader, or as text through a pgbouncer-style proxy
    return orjson.loads(value) if isinstance(value, str | bytes) else value


async def history(pool: AsyncConnectionPool, ducat_id: int, *, after: int, limit: int) -> dict[str, Any] | None:
    """One page of a ducat's provenance: its mint (on the first page, ``after`` = 0),
    then up to ``limit`` accepted transfers with seq > ``after``, in seq order.
    ``next`` is the seq to pass as ``after`` for the next page, or None at the end."""
    row = await _one(pool, f"""
        SELECT d.mint_id, m.seq, d.minted_at, m.holder,
               (SELECT coalesce(json_agg(x ORDER BY x.seq), '[]') FROM (
                    SELECT {_MOVE} FROM ducat_moves WHERE ducat_id = %(id)s AND seq > %(after)s
                    ORDER BY seq LIMIT %(n)s) AS x)
        FROM ducats AS d JOIN mints AS m ON m.mint_id = d.mint_id WHERE d.id = %(id)s""",
        {"id": ducat_id, "after": after, "n": limit + 1})
    if row is None:
        return None
    mint_id, mint_seq, minted_at, minter, moves = row
    moves = _decoded(moves)
    more = len(moves) > limit
    entries: list[dict[str, Any]] = [{"kind": "transfer", **mv} for mv in moves[:limit]]
    if after == 0:
        entries.insert(0, {"kind": "mint", "seq": mint_seq, "timestamp": _iso(minted_at), "from": None,
                           "to": minter, "mintId": mint_id})
    return {"ducatId": ducat_str(ducat_id), "entries": entries, "next": entries[-1]["seq"] if more else None}


_TX = """seq, transaction_id, ts, sender, receiver, ducat_count, consciousness_impact"""


def _transaction(row: tuple[Any, ...]) -> dict[str, Any]:
    seq, tx_id, ts, sender, receiver, count, impact = row[:7]
    return {"seq": seq, "transactionId": tx_id, "timestamp": _iso(ts), "from": sender, "to": receiver,
            "ducatCount": count, "consciousnessImpact": round(impact, 6)}


async def recent_transactions(pool: AsyncConnectionPool, *, before: int | None, limit: int,
                              holder: str | None = None) -> list[dict[str, Any]]:
    """Accepted transactions with seq < ``before`` (all when None), newest first; with
    ``holder``, only those it sent or received."""
    bound = "" if before is None else "AND seq < %(before)s"
    if holder is None:
        query = f"SELECT {_TX} FROM transactions WHERE true {bound} ORDER BY seq DESC LIMIT %(n)s"
    else:
        query = f"""SELECT * FROM (
                       (SELECT {_TX} FROM transactions WHERE sender = %(h)s {bound} ORDER BY seq DESC LIMIT %(n)s)
                       UNION
                       (SELECT {_TX} FROM transactions WHERE receiver = %(h)s {bound} ORDER BY seq DESC LIMIT %(n)s)
                   ) AS t ORDER BY seq DESC LIMIT %(n)s"""
    rows = await _all(pool, query, {"before": before, "n": limit, "h": holder})
    return [_transaction(r) for r in rows]


async def transaction_status(pool: AsyncConnectionPool, transaction_id: str) -> dict[str, Any] | None:
    """``accepted`` (with the transaction), ``rejected`` (with the ledger's reason), or
    None when the ledger has not decided it (yet)."""
    row = await _one(pool, f"""
        SELECT i.seq, i.reason, i.detail, i.ts, (SELECT last_seq FROM ducat_state_position), t.*
        FROM transaction_ids AS i
        LEFT JOIN LATERAL (SELECT {_TX}, ducat_ids FROM transactions
                           WHERE seq = i.seq AND ts = i.ts::timestamptz) AS t ON true
        WHERE i.transaction_id = %(id)s""", {"id": transaction_id})
    if row is None:
        return None
    seq, reason, detail, ts, as_of = row[:5]
    if seq is None:
        return {"transactionId": transaction_id, "status": "rejected", "reason": reason, "detail": detail,
                "timestamp": _iso(ts)}
    out = {"transactionId": transaction_id, "status": "accepted", "seq": seq, "asOfSeq": as_of}
    if row[5] is not None:  # the transaction row is written in the same transaction as its id
        out.update(_transaction(row[5:]))
        out["ducatIds"] = [ducat_str(i) for i in row[12]]
    return out


async def mint_status(pool: AsyncConnectionPool, mint_id: str) -> dict[str, Any] | None:
    """``accepted`` (with its seq and range) or ``rejected`` (a conflict), or None if undecided."""
    row = await _one(pool, """
        SELECT m.seq, m.batch, m.first_seq, m.count, m.holder, m.ts, r.reason, r.detail
        FROM (SELECT %(id)s::text AS mint_id) AS k
        LEFT JOIN mints AS m USING (mint_id) LEFT JOIN mint_rejections AS r USING (mint_id)""", {"id": mint_id})
    assert row is not None
    seq, batch, first, count, holder, ts, reason, detail = row
    if seq is not None:
        return {"mintId": mint_id, "status": "accepted", "seq": seq, "batch": batch, "firstSeq": first,
                "count": count, "holder": holder, "timestamp": _iso(ts)}
    if reason is not None:
        return {"mintId": mint_id, "status": "rejected", "reason": reason, "detail": detail}
    return None


async def holder(pool: AsyncConnectionPool, name: str, *, after: int, limit: int) -> dict[str, Any] | None:
    """A holder's balance and one page of its ducats (ids above ``after``, ascending);
    None for a name that never held a ducat."""
    row = await _one(pool, """
        SELECT b.ducats, (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM (
                              SELECT id FROM ducats WHERE holder = %(h)s AND id > %(after)s
                              ORDER BY id LIMIT %(n)s) AS x), """ + _POSITIONS + """
        FROM holder_balances AS b WHERE b.holder = %(h)s""", {"h": name, "after": after, "n": limit + 1})
    if row is None:
        return None
    balance, ids, as_of, ledger_seq = row
    more = len(ids) > limit
    return {"holder": name, "balance": balance, "ducatIds": [ducat_str(i) for i in ids[:limit]],
            "next": ducat_str(ids[limit - 1]) if more else None, "asOfSeq": as_of, "ledgerSeq": ledger_seq}


async def daily_metrics(pool: AsyncConnectionPool, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """The stored daily rollups from ``first`` to ``last``, inclusive, by date."""
    rows = await _all(pool, "SELECT metrics FROM daily_metrics WHERE date BETWEEN %(a)s AND %(b)s ORDER BY date",
                      {"a": first, "b": last})
    return [_decoded(r[0]) for r in rows]


async def metric_history(pool: AsyncConnectionPool, *, minutes: int, points: int = 240) -> list[dict[str, Any]]:
    """Circulation, holders and velocity over the last ``minutes`` of snapshots (wall
    clock), averaged into at most about ``points`` buckets, oldest first."""
    bucket = max(1, minutes * 60 // points)
    rows = await _all(pool, """
        SELECT date_bin(make_interval(secs => %(b)s), ts, timestamptz '2000-01-01') AS t,
               max(supply), max(circulation), max(holders), max(transfers),
               avg(velocity_1m), avg(velocity_1h), avg(velocity_1d)
        FROM metric_history WHERE ts >= now() - make_interval(mins => %(m)s)
        GROUP BY 1 ORDER BY 1""", {"b": bucket, "m": minutes})
    return [{"ts": _iso(t), "supply": s, "circulation": c, "holders": h, "transfers": n,
             "velocity": {"1m": round(v1, 6), "1h": round(v2, 6), "1d": round(v3, 6)}}
            for t, s, c, h, n, v1, v2, v3 in rows]
