"""The ledger sink's SQL: one round trip per query, whatever the batch size.

Reads take arrays (``= ANY``); bulk writes go through COPY into the target or
into a temporary staging table, and mints are expanded server-side with
``generate_series``.
"""
from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import AsyncConnection, AsyncCursor

from ducats.domain.consciousness import DucatState


def int_array(ids: Iterable[int]) -> str:
    """``ids`` as a PostgreSQL array literal (``{1,2,3}``), for a ``%s::bigint[]`` parameter or a
    text COPY column. psycopg's list dumper inspects every element of every list it is given;
    at 25,000 ids a batch and one list per transaction row it was 5.5 % of the ledger's time
    under load (py-spy, BENCHMARKS.md); ``str.join`` over ``map(str, ...)`` is a C loop."""
    return "{" + ",".join(map(str, ids)) + "}"


def text_array(values: Iterable[str]) -> str:
    """``values`` as a PostgreSQL array literal of quoted elements (``{"a","b \\"c\\""}``), for a
    ``%s::text[]`` (or ``::timestamptz[]``) parameter: psycopg's list dumper took 0.3 s of
    every batch of 16,000 transfers in the edges sink (cProfile, BENCHMARKS.md). Every
    element is quoted, so NULL, braces, commas and spaces are text; a backslash and a
    double quote are escaped. (Holder names cannot hold NUL: the contracts refuse it.)"""
    return "{" + ",".join(['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values]) + "}"


def bool_array(values: Iterable[bool]) -> str:
    """``values`` as a PostgreSQL boolean array literal (``{t,f}``), as :func:`int_array`."""
    return "{" + ",".join(["t" if v else "f" for v in values]) + "}"


async def load_holders(cur: AsyncCursor[Any], ids: Sequence[int]) -> tuple[dict[int, str], dict[int, DucatState]]:
    """The holder and the stored consciousness of each of ``ids`` that exists."""
    if not ids:
        return {}, {}
    await cur.execute(
        """SELECT id, holder, previous_holder, transfer_count, impact_sum, network_hops, consciousness_level,
                  stage, temperature::text, last_tx_seq, last_transfer_at, memory_count
           FROM ducats WHERE id = ANY(%s::text::bigint[])""", [int_array(ids)], binary=True)  # binary: less parsing
    holders, states = {}, {}
    for i, holder, prev, count, impact, hops, level, stage, temp, seq, at, memories in await cur.fetchall():
        holders[i] = holder
        # positional: this runs for every ducat a batch names (see DucatState for the order)
        states[i] = DucatState(i, holder, prev, count, impact, hops, level, stage, temp, seq or 0, at, memories,
                               None, (temp, stage, level))
    return holders, states


async def load_owners(cur: AsyncCursor[Any], ids: Sequence[int]) -> dict[int, str]:
    """The holder of each of ``ids`` that exists, as its ``ducats`` row says (the ledger's
    first use of a ducat in a term: see LedgerSink.owners for why the row is right)."""
    if not ids:
        return {}
    await cur.execute("SELECT id, holder FROM ducats WHERE id = ANY(%s::text::bigint[])", [int_array(ids)],
                      binary=True)
    intern = sys.intern  # a holder's name once in memory, however many ducats it holds
    return {i: intern(h) for i, h in await cur.fetchall()}


async def owners_after_state(conn: AsyncConnection[Any]) -> dict[int, str]:
    """Ducat -> holder for every ducat moved after the ducat-state sink's position: the moves
    its ``ducats`` rows do not show yet, replayed in seq order (the ledger's index at the start
    of a term; run it holding the ledger's lock, so the log does not grow meanwhile)."""
    row = await (await conn.execute("SELECT last_seq FROM ducat_state_position")).fetchone()
    owners: dict[int, str] = {}
    cur = conn.cursor(name="owners_after_state", binary=True)  # server-side: the backlog may be large
    try:
        await cur.execute("SELECT receiver, ducat_ids FROM transactions WHERE seq > %s ORDER BY seq",
                          [row[0] if row else 0])
        intern = sys.intern
        async for receiver, ids in cur:
            receiver = intern(receiver)
            for i in ids:
                owners[i] = receiver
    finally:
        await cur.close()
    return owners


async def load_seen(cur: AsyncCursor[Any], table: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` are already recorded in ``transaction_ids`` or ``mints``."""
    if not ids:
        return set()
    query = {"transaction_ids": "SELECT transaction_id FROM transaction_ids WHERE transaction_id = ANY(%s)",
             "mints": "SELECT mint_id FROM mints WHERE mint_id = ANY(%s)"}[table]
    await cur.execute(query, [list(ids)])
    return {row[0] for row in await cur.fetchall()}


async def load_taken_mints(cur: AsyncCursor[Any], mints: Sequence[tuple[str, int, int]]) -> set[str]:
    """Mint ids whose ducat range already holds at least one ducat."""
    if not mints:
        return set()
    await cur.execute(
        """SELECT m.mint_id FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS m(mint_id, lo, hi)
           WHERE EXISTS (SELECT 1 FROM ducats d WHERE d.id BETWEEN m.lo AND m.hi)""",
        [[m[0] for m in mints], [m[1] for m in mints], [m[2] for m in mints]])
    return {row[0] for row in await cur.fetchall()}


async def insert_mints(cur: AsyncCursor[Any], rows: Sequence[tuple[str, int, int, int, int, str, str]]) -> None:
    """rows: (mint_id, seq, batch, first_seq, count, holder, ts). Ducats expand server-side."""
    if not rows:
        return
    cols = list(zip(*rows, strict=True))
    params = [list(c) for c in cols]
    await cur.execute(
        """INSERT INTO mints (mint_id, seq, batch, first_seq, count, holder, ts)
           SELECT * FROM unnest(%s::text[], %s::bigint[], %s::int[], %s::int[], %s::int[],
                                %s::text[], %s::timestamptz[])""", params)
    await cur.execute(
        """INSERT INTO ducats (id, batch, holder, mint_id, minted_at)
           SELECT m.batch::bigint * 1000000 + s, m.batch, m.holder, m.mint_id, m.ts
           FROM unnest(%s::text[], %s::int[], %s::int[], %s::int[], %s::text[], %s::timestamptz[])
                AS m(mint_id, batch, first_seq, count, holder, ts)
           CROSS JOIN LATERAL generate_series(m.first_seq, m.first_seq + m.count - 1) AS s""",
        [params[0], params[2], params[3], params[4], params[5], params[6]])


async def record_mint_rejections(cur: AsyncCursor[Any], rows: Sequence[tuple[str, str, str]]) -> None:
    """rows: (mint_id, reason, detail) of refused mints; a mint refused before keeps its first refusal."""
    if rows:
        cols = [list(c) for c in zip(*rows, strict=True)]
        await cur.execute("""INSERT INTO mint_rejections (mint_id, reason, detail)
                             SELECT * FROM unnest(%s::text[], %s::text[], %s::text[])
                             ON CONFLICT (mint_id) DO NOTHING""", cols)


async def copy_rows(cur: AsyncCursor[Any], statement: str, rows: Iterable[Sequence[Any]]) -> None:
    async with cur.copy(statement) as copy:  # type: ignore[arg-type]
        for row in rows:
            await copy.write_row(row)


async def copy_binary_rows(cur: AsyncCursor[Any], statement: str, rows: Iterable[Sequence[Any]],
                           types: Sequence[str]) -> None:
    """COPY ``rows`` in binary (``statement`` says FORMAT BINARY; ``types``, one per
    column): no text formatting of numbers and times, about 5x faster for wide rows."""
    async with cur.copy(statement) as copy:  # type: ignore[arg-type]
        copy.set_types(types)
        for row in rows:
            await copy.write_row(row)


async def apply_changes(cur: AsyncCursor[Any], changes: dict[int, DucatState]) -> None:
    """Write the moved ducats' new holder and consciousness: COPY to staging, then one UPDATE ... FROM.

    Only the columns: the consciousness document is built on read (reads/ledger.py);
    ``last_evolution`` keeps its stored value unless a move of this batch raised the stage."""
    if not changes:
        return
    await cur.execute("""CREATE TEMP TABLE IF NOT EXISTS ducat_changes (
                             id bigint, holder text, previous_holder text, transfer_count int,
                             impact_sum double precision, network_hops int, last_seq bigint, last_at timestamptz,
                             level double precision, stage smallint, temperature text, evolved_at timestamptz,
                             memory_count smallint)
                         ON COMMIT DELETE ROWS""")
    await copy_binary_rows(
        cur, """COPY ducat_changes (id, holder, previous_holder, transfer_count, impact_sum, network_hops,
                                          last_seq, last_at, level, stage, temperature, evolved_at, memory_count)
                FROM STDIN (FORMAT BINARY)""",
        staged_rows(changes[i] for i in sorted(changes)), STAGED_TYPES)
    # Without statistics on the staging table the planner hash-joins a scan of
    # all of ducats, every batch; by primary key it is half the time (BENCHMARKS.md).
    # The rows go in ducat-id order, so the nested loop walks the primary key and the
    # heap in order (BENCHMARKS.md, "Measured improvements", variant D).
    await cur.execute("SET LOCAL enable_hashjoin = off")
    await cur.execute("SET LOCAL enable_mergejoin = off")
    await cur.execute(
        """UPDATE ducats AS d SET holder = c.holder, previous_holder = c.previous_holder,
                  transfer_count = c.transfer_count, impact_sum = c.impact_sum, network_hops = c.network_hops,
                  last_tx_seq = c.last_seq, last_transfer_at = c.last_at, consciousness_level = c.level,
                  stage = c.stage, temperature = c.temperature::temperature, memory_count = c.memory_count,
                  last_evolution = coalesce(c.evolved_at, d.last_evolution)
           FROM ducat_changes AS c WHERE d.id = c.id""")


STAGED_TYPES = ("int8", "text", "text", "int4", "float8", "int4", "int8", "timestamptz", "float8", "int2", "text",
                "timestamptz", "int2")


def staged_rows(states: Iterable[DucatState]) -> Iterable[tuple[Any, ...]]:
    """One ducat_changes row per moved ducat."""
    for st in states:
        yield (st.id, st.holder, st.previous_holder, st.transfer_count, st.impact_sum, st.network_hops,
               st.last_seq, st.last_at, st.level, st.stage, st.temperature, st.evolved_at, st.memory_count)


async def save_position(cur: AsyncCursor[Any], *, last_seq: int, offsets: dict[tuple[str, int], int],
                        watermark: dt.datetime | None = None) -> None:
    """Record the ledger position (last seq, event-time watermark) and the next input offset of each partition."""
    await cur.execute("UPDATE ledger_state SET last_seq = %s, watermark = %s", [last_seq, watermark])
    if offsets:
        keys = list(offsets)
        await cur.execute(
            """INSERT INTO ledger_offsets (topic, partition, next_offset)
               SELECT * FROM unnest(%s::text[], %s::int[], %s::bigint[])
               ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset""",
            [[k[0] for k in keys], [k[1] for k in keys], [offsets[k] for k in keys]])


async def save_chain(cur: AsyncCursor[Any], heads: dict[int, int]) -> None:
    """The new head (last seq) of each batches-topic partition this batch wrote to."""
    if heads:
        await cur.execute(
            """INSERT INTO accepted_chain (partition, last_seq)
               SELECT * FROM unnest(%s::int[], %s::bigint[])
               ON CONFLICT (partition) DO UPDATE SET last_seq = excluded.last_seq""",
            [list(heads), list(heads.values())])


async def ensure_month_partitions(cur: AsyncCursor[Any], timestamps: Sequence[str]) -> None:
    """Native storage: the monthly partitions for these timestamps (and their
    neighbours, so a time zone offset never crosses into a missing month)."""
    await cur.execute(
        """SELECT ducats_ensure_month_partition(m) FROM (
               SELECT DISTINCT (date_trunc('month', t::timestamptz) + k * INTERVAL '1 month')::date AS m
               FROM unnest(%s::text[]) AS t, generate_series(-1, 1) AS k) AS months""",
        [list(timestamps)])


async def load_balances(cur: AsyncCursor[Any], holders: Sequence[str]) -> dict[str, int]:
    if not holders:
        return {}
    await cur.execute("SELECT holder, ducats FROM holder_balances WHERE holder = ANY(%s)", [list(holders)])
    return {row[0]: row[1] for row in await cur.fetchall()}


async def save_balances(cur: AsyncCursor[Any], balances: dict[str, int]) -> None:
    """Absolute balances after the batch (idempotent by construction)."""
    if not balances:
        return
    await cur.execute(
        """INSERT INTO holder_balances (holder, ducats) SELECT * FROM unnest(%s::text[], %s::bigint[])
           ON CONFLICT (holder) DO UPDATE SET ducats = excluded.ducats""",
        [list(balances), list(balances.values())])
