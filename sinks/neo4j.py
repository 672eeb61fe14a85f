"""The Neo4j mirror (docs/network.md, "Neo4j on standby"): holders as ``(:Holder
{name, region})`` nodes and edges as ``[:SENT {weight, transfers, firstSeq,
lastSeq}]`` relationships, copied from PostgreSQL in batches with ``UNWIND ...
MERGE``, idempotent by seq.

What is copied: in one PostgreSQL snapshot, the edges whose ``last_seq`` is above
the seq their source partition was mirrored to (``edges.source``; the edges sink
moves a partition's position and its edges in one transaction, so the snapshot's
``edge_positions`` say exactly what it holds). The values are absolute, and a
relationship is only updated by a higher ``lastSeq``: a batch sent twice, or an
older one after a newer, changes nothing. The positions mirrored to are kept in
Neo4j itself (``(:MirrorState)``), written in the same Neo4j transaction as the
last batch of a pass, so a restart re-sends at most what was already sent.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from neo4j import AsyncDriver, AsyncGraphDatabase

BATCH = 5000  # relationships per UNWIND

MERGE_EDGES = """
UNWIND $rows AS row
MERGE (a:Holder {name: row.s})
  ON CREATE SET a.region = row.sr
MERGE (b:Holder {name: row.r})
  ON CREATE SET b.region = row.rr
SET a.region = row.sr, b.region = row.rr
MERGE (a)-[e:SENT]->(b)
  ON CREATE SET e.lastSeq = 0
WITH e, row WHERE e.lastSeq < row.l
SET e.weight = row.w, e.transfers = row.n, e.firstSeq = row.f, e.lastSeq = row.l
"""
SAVE_STATE = "MERGE (m:MirrorState {id: 1}) SET m.positions = $positions"
LOAD_STATE = "MATCH (m:MirrorState {id: 1}) RETURN m.positions AS positions"


def driver(url: str) -> AsyncDriver:
    return AsyncGraphDatabase.driver(url, connection_timeout=5, max_transaction_retry_time=10)


async def ensure_schema(drv: AsyncDriver) -> None:
    async with drv.session() as s:
        await s.run("CREATE CONSTRAINT holder_name IF NOT EXISTS FOR (h:Holder) REQUIRE h.name IS UNIQUE")


async def mirrored_positions(drv: AsyncDriver) -> dict[int, int]:
    async with drv.session() as s:
        record = await (await s.run(LOAD_STATE)).single()
    if record is None or record["positions"] is None:
        return {}
    flat = list(record["positions"])  # stored as [p0, seq0, p1, seq1, ...]: Neo4j has no maps as properties
    return {int(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}


async def changed_edges(conn: psycopg.AsyncConnection[Any], since: Mapping[int, int]
                        ) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """The edges changed since ``since`` (source partition -> seq), with their endpoints'
    regions, and the positions they are at, in one snapshot."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        positions = {int(p): int(q) for p, q in await (await conn.execute(
            "SELECT partition, seq FROM edge_positions")).fetchall()}
        floor = min((since.get(p, 0) for p in positions), default=0)
        cur = await conn.execute(
            """SELECT e.sender, e.receiver, e.weight, e.transfers, e.first_seq, e.last_seq, e.source, e.region,
                      coalesce(r.region, 'unknown')
               FROM edges AS e LEFT JOIN holders AS r ON r.holder = e.receiver
               WHERE e.last_seq > %s""", [floor])
        rows = [{"s": s, "r": r, "w": w, "n": n, "f": f, "l": lq, "sr": sr, "rr": rr}
                for s, r, w, n, f, lq, src, sr, rr in await cur.fetchall() if lq > since.get(src, 0)]
    return rows, positions


async def mirror_once(conn: psycopg.AsyncConnection[Any], drv: AsyncDriver) -> int:
    """One pass: what changed since the last one, into Neo4j. Returns the edges sent."""
    since = await mirrored_positions(drv)
    rows, positions = await changed_edges(conn, since)
    if positions == since and not rows:
        return 0
    flat = [x for p, q in sorted(positions.items()) for x in (p, q)]
    async with drv.session() as s:
        for i in range(0, max(len(rows), 1), BATCH):
            chunk = rows[i:i + BATCH]
            last = i + BATCH >= len(rows)

            async def work(tx: Any, chunk: list[dict[str, Any]] = chunk, last: bool = last) -> None:
                if chunk:
                    await (await tx.run(MERGE_EDGES, rows=chunk)).consume()
                if last:
                    await (await tx.run(SAVE_STATE, positions=flat)).consume()
            await s.execute_write(work)
    return len(rows)


async def counts(drv: AsyncDriver) -> tuple[int, int]:
    """(holders, edges) in Neo4j."""
    async with drv.session() as s:
        nodes = await (await s.run("MATCH (h:Holder) RETURN count(h) AS n")).single()
        rels = await (await s.run("MATCH (:Holder)-[e:SENT]->(:Holder) RETURN count(e) AS n")).single()
    return int(nodes["n"]) if nodes else 0, int(rels["n"]) if rels else 0
