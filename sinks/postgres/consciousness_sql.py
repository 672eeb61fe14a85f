"""The ledger sink's SQL for the consciousness model: memories, census, cooling.

Each helper is one statement (one round trip) whatever the batch size; the
rules themselves are in ducats.domain.consciousness, and these only store
their outcome, in the ledger's transaction.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncCursor

from ducats.domain.consciousness import HOT_WITHIN, WARM_WITHIN, Memory, remember

_FIELDS = ("ducat_id", "memory_id", "created_at", "kind", "counterparty", "memory", "significance", "occurrences",
           "compressed")  # the order of the columns in both statements below


async def load_memories(cur: AsyncCursor[Any], ducats: Sequence[int]) -> dict[int, list[Memory]]:
    """The stored memory rows of ``ducats``, per ducat."""
    out: dict[int, list[Memory]] = {d: [] for d in ducats}
    if not ducats:
        return out
    await cur.execute("""SELECT ducat_id, memory_id, created_at, kind, counterparty, memory, significance,
                                occurrences, compressed
                         FROM ducat_memories WHERE ducat_id = ANY(%s::bigint[])""", [list(ducats)])
    for d, i, at, kind, party, text, sig, occ, compressed in await cur.fetchall():
        # significance is a real: back to the 6-digit value the model stored
        out[d].append(Memory(ducat_id=d, memory_id=i, created_at=at, kind=kind, counterparty=party, memory=text,
                             significance=round(sig, 6), occurrences=occ, compressed=compressed, dirty=False))
    return out


async def write_memories(cur: AsyncCursor[Any], upserts: Sequence[Memory], removed: Sequence[Memory]) -> None:
    """Delete the rows folded into summaries and upsert the new and changed ones, in one statement."""
    if not upserts and not removed:
        return
    cols = [[getattr(m, c) for m in upserts] for c in _FIELDS]
    await cur.execute(
        """WITH gone AS (
                DELETE FROM ducat_memories AS m USING unnest(%s::bigint[], %s::bigint[]) AS g(ducat_id, memory_id)
                WHERE m.ducat_id = g.ducat_id AND m.memory_id = g.memory_id)
            INSERT INTO ducat_memories (ducat_id, memory_id, created_at, kind, counterparty, memory,
                                        significance, occurrences, compressed)
            SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::text[], %s::text[], %s::text[],
                                 %s::real[], %s::int[], %s::boolean[])
            ON CONFLICT (ducat_id, memory_id) DO UPDATE SET
                kind = excluded.kind, counterparty = excluded.counterparty, memory = excluded.memory,
                significance = excluded.significance, occurrences = excluded.occurrences,
                compressed = excluded.compressed""",
        [[m.ducat_id for m in removed], [m.memory_id for m in removed], *cols])


async def cool_and_count(cur: AsyncCursor[Any], *, census: Counter[tuple[str, str]],
                         previous: dt.datetime | None, watermark: dt.datetime | None) -> None:
    """Cool the ducats the batch did not move, then apply every census delta, in one statement.

    Run it after apply_changes. Only a ducat whose last transfer crossed the
    hot or the warm boundary while the watermark advanced from ``previous`` can
    change, so the cooling reads two narrow ranges of the partial index on
    active ducats instead of every warm one."""
    deltas = [(k, n) for k, n in census.items() if n]
    if watermark is None or (not deltas and watermark == previous):
        return  # nothing accepted yet, or nothing changed and no time passed
    await cur.execute(
        """WITH candidates AS (
               SELECT id, temperature AS was,
                      (CASE WHEN last_transfer_at >= %(w)s::timestamptz - %(warm)s THEN 'warm' ELSE 'cold' END)::temperature AS became
               FROM ducats
               WHERE temperature <> 'cold'
                 AND (last_transfer_at >= %(p)s::timestamptz - %(hot)s
                      AND last_transfer_at < %(w)s::timestamptz - %(hot)s
                      OR last_transfer_at >= %(p)s::timestamptz - %(warm)s
                      AND last_transfer_at < %(w)s::timestamptz - %(warm)s)),
           cooled AS (
               UPDATE ducats AS d SET temperature = c.became FROM candidates AS c
               WHERE d.id = c.id AND c.became <> c.was
               RETURNING c.was, c.became),
           delta (dimension, bucket, n) AS (
               SELECT 'temperature', was::text, -1 FROM cooled
               UNION ALL SELECT 'temperature', became::text, 1 FROM cooled
               UNION ALL SELECT * FROM unnest(%(dims)s::text[], %(buckets)s::text[], %(ns)s::bigint[]))
           UPDATE ducat_census AS c SET ducats = c.ducats + s.n
           FROM (SELECT dimension, bucket, sum(n) AS n FROM delta GROUP BY dimension, bucket) AS s
           WHERE c.dimension = s.dimension AND c.bucket = s.bucket AND s.n <> 0""",
        {"w": watermark, "p": previous or "-infinity",
         "hot": HOT_WITHIN, "warm": WARM_WITHIN,
         "dims": [k[0] for k, _ in deltas], "buckets": [k[1] for k, _ in deltas], "ns": [n for _, n in deltas]})


async def store_memories(cur: AsyncCursor[Any], memories: Sequence[Memory]) -> None:
    """Aggregate and compress the batch's memories against the stored rows, and write the outcome."""
    if memories:
        stored = await load_memories(cur, sorted({m.ducat_id for m in memories}))
        await write_memories(cur, *remember(stored, memories))
