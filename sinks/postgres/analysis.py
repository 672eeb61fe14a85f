"""What `ducats analyze` reads from and writes to PostgreSQL (docs/network.md).

Reads: the edges (one row per directed pair) and the seq each partition's edges
are at, in one snapshot; the newest run's communities. Writes: one
``analysis_runs`` row per run, and ``community_members`` replaced by the run's.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import psycopg

PREVIOUS = """SELECT result->'nextCommunityId', result->'communitySizes' FROM analysis_runs
              ORDER BY id DESC LIMIT 1"""


async def load_graph(conn: psycopg.AsyncConnection[Any]) -> tuple[list[tuple[str, str, int]], dict[int, int]]:
    """The edges and the positions they are at, read in one snapshot."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cur = await conn.execute("SELECT partition, seq FROM edge_positions")
        positions = {int(p): int(s) for p, s in await cur.fetchall()}
        edges: list[tuple[str, str, int]] = []
        async with conn.cursor().copy("COPY (SELECT sender, receiver, weight FROM edges) TO STDOUT") as copy:
            copy.set_types(["text", "text", "int8"])
            async for row in copy.rows():
                edges.append(row)  # type: ignore[arg-type]
    return edges, positions


async def previous_run(conn: psycopg.AsyncConnection[Any]) -> tuple[dict[str, int], dict[int, int], int]:
    """The newest run's community of each holder, its communities' sizes, and the next free id."""
    row = await (await conn.execute(PREVIOUS)).fetchone()
    if row is None:
        return {}, {}, 0
    members: dict[str, int] = {}
    async with conn.cursor().copy("COPY community_members TO STDOUT") as copy:
        copy.set_types(["text", "int8"])
        async for holder, community in copy.rows():
            members[holder] = community
    return members, {int(k): int(v) for k, v in (row[1] or {}).items()}, int(row[0] or 0)


async def save_run(conn: psycopg.AsyncConnection[Any], result: dict[str, Any],
                   members: Sequence[tuple[str, int]]) -> None:
    """Store ``result`` (the run's JSON, given its ``runId`` here) and its members."""
    async with conn.transaction():
        row = await (await conn.execute("SELECT nextval('analysis_runs_id_seq')")).fetchone()
        assert row is not None
        result["runId"] = int(row[0])
        await conn.execute(
            """INSERT INTO analysis_runs (id, computed_at, seq, ms, nodes, edges, components, largest_component,
                                          communities, result)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            [result["runId"], result["computedAt"], result["seq"], result["ms"], result["graph"]["nodes"], result["graph"]["edges"],
             result["components"]["count"], result["components"]["largest"], result["communityCount"],
             orjson.dumps(result).decode()])
        await conn.execute("TRUNCATE community_members")
        async with conn.cursor().copy("COPY community_members (holder, community) FROM STDIN") as copy:
            for m in members:
                await copy.write_row(m)
