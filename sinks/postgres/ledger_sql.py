"""The ledger sink's SQL: one round trip per query, whatever the batch size.

Reads take arrays (``= ANY``); bulk writes go through COPY into the target or
into a temporary staging table, and mints are expanded server-side with
``generate_series``.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import AsyncCursor

from ducats.domain.ledger import DucatChange


async def load_holders(cur: AsyncCursor[Any], ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    await cur.execute("SELECT id, holder FROM ducats WHERE id = ANY(%s::bigint[])", [list(ids)])
    return {row[0]: row[1] for row in await cur.fetchall()}


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


async def copy_rows(cur: AsyncCursor[Any], statement: str, rows: Iterable[Sequence[Any]]) -> None:
    async with cur.copy(statement) as copy:  # type: ignore[arg-type]
        for row in rows:
            await copy.write_row(row)


async def apply_changes(cur: AsyncCursor[Any], changes: dict[int, DucatChange]) -> None:
    """Move ducats to their new holders: COPY to staging, then one UPDATE ... FROM."""
    if not changes:
        return
    await cur.execute("""CREATE TEMP TABLE IF NOT EXISTS ducat_changes (
                             id bigint, holder text, moves int, last_seq bigint, last_at timestamptz)
                         ON COMMIT DELETE ROWS""")
    await copy_rows(cur, "COPY ducat_changes (id, holder, moves, last_seq, last_at) FROM STDIN",
                    ((d, c.holder, c.moves, c.last_seq, c.last_ts) for d, c in changes.items()))
    await cur.execute(
        """UPDATE ducats AS d SET holder = c.holder, transfer_count = d.transfer_count + c.moves,
                  last_tx_seq = c.last_seq, last_transfer_at = c.last_at
           FROM ducat_changes AS c WHERE d.id = c.id""")


async def save_position(cur: AsyncCursor[Any], *, last_seq: int,
                        offsets: dict[tuple[str, int], int]) -> None:
    """Record the ledger position and the next input offset of each partition."""
    await cur.execute("UPDATE ledger_state SET last_seq = %s", [last_seq])
    if offsets:
        keys = list(offsets)
        await cur.execute(
            """INSERT INTO ledger_offsets (topic, partition, next_offset)
               SELECT * FROM unnest(%s::text[], %s::int[], %s::bigint[])
               ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset""",
            [[k[0] for k in keys], [k[1] for k in keys], [offsets[k] for k in keys]])


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
