"""Probe: the edges sink (sinks/postgres/edges.py) alone, on batches of 16,000 transfers,
against the configured PostgreSQL, in a scratch database it drops and re-creates.

    .venv/bin/python bench/probes/edges_sink.py 500          # 500 holder pairs (bench metrics' shape)
    .venv/bin/python bench/probes/edges_sink.py 16000 x      # mostly new pairs; x: and a cProfile
"""
from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import random
import sys
import time
from typing import Any

import psycopg

from ducats.connect import pg_pool
from sinks.postgres import edges as sink
from sinks.postgres.migrate import migrate

BATCH, BATCHES, WARM = 16_000, 8, 2


def batches(npairs: int) -> list[dict[int, list[dict[str, Any]]]]:
    rng = random.Random(1)
    holders = [f"holder-{i}" for i in range(500)]
    pairs = [(rng.choice(holders), rng.choice(holders)) for _ in range(npairs)]
    out = []
    for b in range(BATCHES):
        parts: dict[int, list[dict[str, Any]]] = {}
        for k in range(BATCH):
            seq = 1 + b * BATCH + k
            frm, to = rng.choice(pairs)
            parts.setdefault(sum(map(ord, frm)) % 4, []).append(
                {"seq": seq, "transactionId": f"t{seq}", "timestamp": "2026-11-26T12:00:00+00:00", "from": frm,
                 "to": to, "ducatCount": 5, "consciousnessImpact": 0.1, "metadata": {}})
        out.append(parts)
    return out


async def main(npairs: int, profile: bool) -> None:
    base = os.environ["DATABASE_URL"]
    url = base.rsplit("/", 1)[0] + "/probe_edges_sink"
    with psycopg.connect(base, autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS probe_edges_sink")
        c.execute("CREATE DATABASE probe_edges_sink")
    migrate(url)
    pool = await pg_pool(url)
    bs = batches(npairs)
    for b in bs[:WARM]:
        await sink.write(pool, b)
    pr = cProfile.Profile()
    if profile:
        pr.enable()
    started = time.perf_counter()
    for b in bs[WARM:]:
        await sink.write(pool, b)
    took = time.perf_counter() - started
    pr.disable()
    print(f"{npairs} pairs: {took / (BATCHES - WARM) * 1000:.1f} ms a batch of {BATCH:,} transfers")
    if profile:
        pstats.Stats(pr).sort_stats("tottime").print_stats(10)
    await pool.close()
    with psycopg.connect(base, autocommit=True) as c:
        c.execute("DROP DATABASE probe_edges_sink")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500, len(sys.argv) > 2))
