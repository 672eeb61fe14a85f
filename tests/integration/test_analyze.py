"""`ducats analyze` against real PostgreSQL and Redis, on graphs with known answers:
edges written by the edges sink (the worker's path), a run, its result in Redis and
in PostgreSQL's history; between two runs a community that doubles is growing."""
from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
import redis.asyncio as aioredis

from ducats.connect import pg_pool
from ducats.keys import RedisKeys
from ducats.settings import Settings
from sinks.postgres import edges as sink
from sinks.postgres.migrate import migrate
from streams.analyze import run_once


class Log:
    """Accepted transfers in one partition, seq after seq."""

    def __init__(self) -> None:
        self.seq = 0

    def transfers(self, pairs: list[tuple[str, str]], n: int = 1) -> list[dict[str, Any]]:
        out = []
        for a, b in pairs:
            self.seq += 1
            out.append({"seq": self.seq, "transactionId": f"t{self.seq}", "timestamp": "2026-11-26T12:00:00+00:00",
                        "from": a, "to": b, "ducatCount": n, "metadata": {"fromRegion": "eu"}})
        return out


def clique(names: list[str]) -> list[tuple[str, str]]:
    return list(itertools.permutations(names, 2))


async def write(url: str, events: list[dict[str, Any]]) -> None:
    pool = await pg_pool(url)
    try:
        await sink.write(pool, {0: events})
    finally:
        await pool.close()


async def test_cliques_star_and_a_community_that_doubles(
        settings_factory: Callable[..., Settings], database_factory: Callable[[], str],
        redis_client: aioredis.Redis) -> None:
    url = database_factory()
    migrate(url)
    s = settings_factory(database_url=url)
    log = Log()
    a, b = [f"a{i}" for i in range(5)], [f"b{i}" for i in range(6)]
    await write(url, log.transfers(clique(a) + clique(b)))

    first = await run_once(s)
    assert (first["components"], first["graph"]) == ({"count": 2, "largest": 6}, {"nodes": 11, "edges": 50})
    assert first["communityCount"] == 2
    assert sorted(c["size"] for c in first["communities"]) == [5, 6]
    assert all(c["new"] for c in first["communities"])
    assert first["seq"] == log.seq == first["positions"]["0"]
    raw = await redis_client.get(RedisKeys.of(s).network)
    assert raw is not None and orjson.loads(raw) == first
    a_id = next(c["id"] for c in first["communities"] if "a0" in c["sample"])

    # a doubles (five more holders join its clique), and a star forms apart from both
    a2 = a + [f"a{i}" for i in range(5, 10)]
    leaves = [f"leaf{i}" for i in range(8)]
    star = [(x, "centre") for x in leaves] + [("centre", x) for x in leaves]
    await write(url, log.transfers([p for p in clique(a2) if p not in set(clique(a))] + star, n=3))

    second = await run_once(s)
    assert second["runId"] == first["runId"] + 1 and second["components"]["count"] == 3
    grown = next(c for c in second["communities"] if c["id"] == a_id)
    assert (grown["size"], grown["previousSize"], grown["growth"], grown["growing"]) == (10, 5, 2.0, True)
    steady = next(c for c in second["communities"] if "b0" in c["sample"])
    assert steady["growth"] == 1.0 and not steady["growing"]
    assert second["influence"][0]["holder"] == "centre"
    with psycopg.connect(url) as conn:
        runs = conn.execute("SELECT id, nodes, edges, components, communities FROM analysis_runs ORDER BY id").fetchall()
        members = conn.execute("SELECT count(*), count(DISTINCT community) FROM community_members").fetchone()
    assert [r[1:] for r in runs] == [(11, 50, 2, 2), (25, 50 + 70 + 16, 3, second["communityCount"])]
    assert members == (25, second["communityCount"])
