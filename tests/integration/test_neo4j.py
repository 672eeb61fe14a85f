"""The Neo4j mirror (sinks/neo4j.py) against a real Neo4j 5 and PostgreSQL: the mirrored
graph of a seeded workload has PostgreSQL's node and edge counts and weights, a
second pass sends only what changed, a pass repeated from scratch changes nothing,
and a Cypher shortest path has the length of igraph's (reads/path.py, both engines)."""
from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import psycopg
import pytest
from neo4j import GraphDatabase

from ducats.connect import pg_connect, pg_pool
from sinks import neo4j as mirror
from sinks.postgres import edges as sink
from sinks.postgres.migrate import migrate
from reads.path import PathFinder
from tests.integration.test_edges_sink import by_partition, log


@pytest.fixture
def empty_neo4j(neo4j_url: str) -> Iterator[str]:
    """The shared Neo4j, emptied for this test."""
    with GraphDatabase.driver(neo4j_url) as drv:
        drv.execute_query("MATCH (n) DETACH DELETE n")
    yield neo4j_url


def pg_graph(url: str) -> tuple[int, dict[tuple[str, str], tuple[int, int]]]:
    with psycopg.connect(url) as conn:
        holders = conn.execute("SELECT count(*) FROM holders").fetchone()
        edges = {(s, r): (w, n) for s, r, w, n in conn.execute("SELECT sender, receiver, weight, transfers FROM edges")}
    assert holders is not None
    return int(holders[0]), edges


def neo_graph(url: str) -> dict[tuple[str, str], tuple[int, int]]:
    with GraphDatabase.driver(url) as drv:
        records, _, _ = drv.execute_query("MATCH (a:Holder)-[e:SENT]->(b:Holder) "
                                          "RETURN a.name AS s, b.name AS r, e.weight AS w, e.transfers AS n")
    return {(r["s"], r["r"]): (r["w"], r["n"]) for r in records}


async def test_the_mirror_equals_postgres_and_paths_agree(database_factory: Callable[[], str],
                                                           empty_neo4j: str) -> None:
    url = database_factory()
    migrate(url)
    rng = random.Random(26)
    events = log(rng, 1500)
    pool = await pg_pool(url)
    conn = await pg_connect(url, autocommit=True)
    drv = mirror.driver(empty_neo4j)
    try:
        await mirror.ensure_schema(drv)
        await sink.write(pool, by_partition(events[:900]))
        first = await mirror.mirror_once(conn, drv)
        holders, edges = pg_graph(url)
        assert first == len(edges) and await mirror.counts(drv) == (holders, len(edges))
        await sink.write(pool, by_partition(events[900:]))   # more transfers: the next pass sends what changed
        second = await mirror.mirror_once(conn, drv)
        holders, edges = pg_graph(url)
        assert 0 < second < len(edges)
        assert await mirror.counts(drv) == (holders, len(edges)) and neo_graph(empty_neo4j) == edges
        assert await mirror.mirror_once(conn, drv) == 0       # nothing changed since
        await (await drv.session().run("MATCH (m:MirrorState) DELETE m")).consume()
        assert await mirror.mirror_once(conn, drv) == len(edges)   # from scratch: all sent again ...
        assert await mirror.counts(drv) == (holders, len(edges)) and neo_graph(empty_neo4j) == edges  # ... no change

        by_neo4j, by_igraph = PathFinder(pool=pool, neo4j_url=empty_neo4j), PathFinder(pool=pool, neo4j_url=None)
        names = sorted({h for pair in edges for h in pair})
        found = 0
        for a, b in [tuple(rng.sample(names, 2)) for _ in range(40)]:
            p1, p2 = await by_neo4j.path(a, b), await by_igraph.path(a, b)
            assert (p1 is None) == (p2 is None), (a, b, p1, p2)
            if p1 is None or p2 is None:
                continue
            found += 1
            assert len(p1) == len(p2) and p1[0] == p2[0] == a and p1[-1] == p2[-1] == b
            assert all((x, y) in edges for path in (p1, p2) for x, y in zip(path, path[1:], strict=False))
        assert found >= 20
        await by_neo4j.close()
    finally:
        await drv.close()
        await conn.close()
        await pool.close()


async def test_a_unique_shortest_path_is_the_same_path(database_factory: Callable[[], str],
                                                      empty_neo4j: str) -> None:
    """a -> b -> c -> d, and a longer way round a -> x -> y -> z -> d: both engines take the short one."""
    url = database_factory()
    migrate(url)
    pool = await pg_pool(url)
    conn = await pg_connect(url, autocommit=True)
    drv = mirror.driver(empty_neo4j)
    try:
        chain = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "x"), ("x", "y"), ("y", "z"), ("z", "d")]
        events = [{"seq": i + 1, "transactionId": f"t{i}", "timestamp": "2026-11-26T12:00:00+00:00", "from": s,
                   "to": r, "ducatCount": 1, "metadata": {}} for i, (s, r) in enumerate(chain)]
        await sink.write(pool, {0: events})
        await mirror.mirror_once(conn, drv)
        neo = PathFinder(pool=pool, neo4j_url=empty_neo4j)
        assert await neo.path("a", "d") == await PathFinder(pool=pool, neo4j_url=None).path("a", "d") == [
            "a", "b", "c", "d"]
        assert await neo.path("d", "a") is None   # along the direction ducats moved only
        await neo.close()
    finally:
        await drv.close()
        await conn.close()
        await pool.close()
