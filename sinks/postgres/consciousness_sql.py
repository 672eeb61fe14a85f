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

from ducats.domain.consciousness import HOT_WITHIN, WARM_WITHIN, Memory, MemoryWrites
from sinks.postgres import ledger_sql as q


async def load_memories(cur: AsyncCursor[Any], ducats: Sequence[int]) -> dict[int, list[Memory]]:
    """The stored memory rows of ``ducats``, per ducat."""
    out: dict[int, list[Memory]] = {d: [] for d in ducats}
    if not ducats:
        return out
    # One index probe per ducat, each pruned to its hash partition at run time (OFFSET 0 keeps the
    # planner from flattening it): "= ANY(array)" on the partitioned table plans the whole array
    # against all 16 partitions, which costs more than the reads.
    await cur.execute("""SELECT m.* FROM unnest(%s::bigint[]) AS u(id) CROSS JOIN LATERAL (
                             SELECT ducat_id, memory_id, created_at, kind, counterparty, memory, significance,
                                    occurrences, compressed
                             FROM ducat_memories WHERE ducat_id = u.id OFFSET 0) AS m""", [list(ducats)])
    for d, i, at, kind, party, text, sig, occ, compressed in await cur.fetchall():
        # significance is a real: back to the 6-digit value the model stored
        out[d].append(Memory(ducat_id=d, memory_id=i, created_at=at, kind=kind, counterparty=party, memory=text,
                             significance=round(sig, 6), occurrences=occ, compressed=compressed, dirty=False))
    return out


async def write_memories(cur: AsyncCursor[Any], writes: MemoryWrites) -> None:
    """COPY the new rows into ducat_memories; update the changed ones and delete the
    folded ones through a staging table, in one statement."""
    if writes.new:
        await q.copy_binary_rows(
            cur, """COPY ducat_memories (ducat_id, memory_id, created_at, kind, counterparty, memory, significance,
                                         occurrences, compressed) FROM STDIN (FORMAT BINARY)""",
            ((m.ducat_id, m.memory_id, m.created_at, m.kind, m.counterparty, m.memory, m.significance,
              m.occurrences, m.compressed) for m in writes.new),
            ("int8", "int8", "timestamptz", "text", "text", "text", "float4", "int4", "bool"))
    if not writes.changed and not writes.gone:
        return
    await cur.execute("""CREATE TEMP TABLE IF NOT EXISTS memory_changes (
                             ducat_id bigint, memory_id bigint, kind text, counterparty text, memory text,
                             significance real, occurrences int, compressed boolean, gone boolean)
                         ON COMMIT DELETE ROWS""")
    await q.copy_binary_rows(
        cur, """COPY memory_changes (ducat_id, memory_id, kind, counterparty, memory, significance, occurrences,
                                     compressed, gone) FROM STDIN (FORMAT BINARY)""",
        [(m.ducat_id, m.memory_id, m.kind, m.counterparty, m.memory, m.significance, m.occurrences, m.compressed,
          gone) for gone, rows in ((False, writes.changed), (True, writes.gone)) for m in rows],
        ("int8", "int8", "text", "text", "text", "float4", "int4", "bool", "bool"))
    await cur.execute(
        """WITH gone AS (
               DELETE FROM ducat_memories AS m USING memory_changes AS c
               WHERE c.gone AND m.ducat_id = c.ducat_id AND m.memory_id = c.memory_id)
           UPDATE ducat_memories AS m SET kind = c.kind, counterparty = c.counterparty, memory = c.memory,
                  significance = c.significance, occurrences = c.occurrences, compressed = c.compressed
           FROM memory_changes AS c
           WHERE NOT c.gone AND m.ducat_id = c.ducat_id AND m.memory_id = c.memory_id""")


async def cool_and_count(cur: AsyncCursor[Any], *, census: Counter[tuple[str, str]],
                         previous: dt.datetime | None, watermark: dt.datetime | None) -> None:
    """Cool the ducats the batch did not move, then apply every census delta, in one statement.

    Run it after apply_changes. Every ducat's temperature is that of its last
    transfer at ``previous`` (the invariant the ledger keeps), so only a hot one
    whose last transfer fell out of the hour, or a warm one out of the day,
    while the watermark advanced can change: two narrow ranges of the partial
    index on active ducats, and the old temperature is known from the range."""
    deltas = [(k, n) for k, n in census.items() if n]
    if watermark is None or (not deltas and watermark == previous):
        return  # nothing accepted yet, or nothing changed and no time passed
    await cur.execute(
        """WITH was_hot AS (
               UPDATE ducats SET temperature = CASE WHEN last_transfer_at >= %(w)s::timestamptz - %(warm)s
                                                    THEN 'warm' ELSE 'cold' END::temperature
               WHERE temperature <> 'cold' AND temperature = 'hot'
                 AND last_transfer_at >= %(p)s::timestamptz - %(hot)s
                 AND last_transfer_at < %(w)s::timestamptz - %(hot)s
               RETURNING temperature),
           was_warm AS (
               UPDATE ducats SET temperature = 'cold'
               WHERE temperature <> 'cold' AND temperature = 'warm'
                 AND last_transfer_at >= %(p)s::timestamptz - %(warm)s
                 AND last_transfer_at < %(w)s::timestamptz - %(warm)s
               RETURNING temperature),
           delta (dimension, bucket, n) AS (
               SELECT 'temperature', 'hot', -1 FROM was_hot
               UNION ALL SELECT 'temperature', temperature::text, 1 FROM was_hot
               UNION ALL SELECT 'temperature', 'warm', -1 FROM was_warm
               UNION ALL SELECT 'temperature', 'cold', 1 FROM was_warm
               UNION ALL SELECT * FROM unnest(%(dims)s::text[], %(buckets)s::text[], %(ns)s::bigint[]))
           UPDATE ducat_census AS c SET ducats = c.ducats + s.n
           FROM (SELECT dimension, bucket, sum(n) AS n FROM delta GROUP BY dimension, bucket) AS s
           WHERE c.dimension = s.dimension AND c.bucket = s.bucket AND s.n <> 0""",
        {"w": watermark, "p": previous or "-infinity", "hot": HOT_WITHIN, "warm": WARM_WITHIN,
         "dims": [k[0] for k, _ in deltas], "buckets": [k[1] for k, _ in deltas], "ns": [n for _, n in deltas]})
