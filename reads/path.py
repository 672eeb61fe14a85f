"""Shortest transfer paths between two holders, for GET /api/network/path: along
the direction ducats moved, fewest hops. With NEO4J_URL set, a Cypher
``shortestPath`` on the mirror; otherwise python-igraph on the edges in
PostgreSQL, loaded once per GRAPH_TTL seconds by each API process."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import igraph as ig
from neo4j import AsyncDriver, AsyncGraphDatabase
from psycopg_pool import AsyncConnectionPool

from reads.ledger import connection

GRAPH_TTL = 30.0
MAX_HOPS = 15
CYPHER = f"""MATCH (a:Holder {{name: $from}}), (b:Holder {{name: $to}})
MATCH p = shortestPath((a)-[:SENT*..{MAX_HOPS}]->(b))
RETURN [n IN nodes(p) | n.name] AS path"""


@dataclass
class _Graph:
    graph: ig.Graph
    index: dict[str, int]
    loaded: float


class PathFinder:
    def __init__(self, *, pool: AsyncConnectionPool, neo4j_url: str | None) -> None:
        self.pool, self.neo4j_url = pool, neo4j_url
        self._driver: AsyncDriver | None = None
        self._graph: _Graph | None = None
        self._lock = asyncio.Lock()

    @property
    def engine(self) -> str:
        return "neo4j" if self.neo4j_url else "igraph"

    async def path(self, sender: str, receiver: str) -> list[str] | None:
        """The holders from ``sender`` to ``receiver``, both included; None if none within MAX_HOPS."""
        if self.neo4j_url:
            if self._driver is None:
                self._driver = AsyncGraphDatabase.driver(self.neo4j_url, connection_timeout=2)
            async with self._driver.session() as s:
                record = await (await s.run(CYPHER, {"from": sender, "to": receiver})).single()
            return None if record is None else list(record["path"])
        g = await self._loaded()
        if sender not in g.index or receiver not in g.index:
            return None
        found = await asyncio.to_thread(g.graph.get_shortest_path, g.index[sender], g.index[receiver], mode="out")
        if not found or len(found) - 1 > MAX_HOPS:
            return None
        names = g.graph.vs["name"]
        return [names[i] for i in found]

    async def _loaded(self) -> _Graph:
        async with self._lock:
            if self._graph is None or time.monotonic() - self._graph.loaded > GRAPH_TTL:
                edges: list[tuple[Any, ...]] = []
                async with connection(self.pool) as conn:
                    async with conn.cursor().copy("COPY (SELECT sender, receiver FROM edges) TO STDOUT") as copy:
                        async for row in copy.rows():
                            edges.append(row)
                g = ig.Graph.TupleList(edges, directed=True)
                self._graph = _Graph(g, {n: i for i, n in enumerate(g.vs["name"])} if edges else {}, time.monotonic())
            return self._graph

    async def close(self) -> None:
        if self._driver is not None:
            await self._driver.close()
