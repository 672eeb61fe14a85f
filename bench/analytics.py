"""``ducats bench analytics``: network intelligence at scale (issue 10).

A private database gets a synthetic holder graph (``--holders`` holders,
``--edges`` directed pairs, most of them inside one of ``--groups`` groups so that
there are communities to find, receivers skewed towards a few popular holders),
written straight into ``holders`` and ``edges`` with COPY (this benchmark times
the analysis, not the edges sink), and ``--history-hours`` of metric snapshots, one
a second, as the publisher keeps them. Then:

- ``ducats analyze --once``, twice (the second matches communities against the
  first), as a subprocess: its runtime and peak RSS;
- the same-run raw baseline: python-igraph and leidenalg on the same edge list,
  loaded from memory (components, weighted PageRank, Leiden) in this process;
- ``ducats api``, and wrk (closed loop, ``--connections``) for ``--wrk-seconds``
  against each analytical endpoint and the floor (``/api/ping``): p50, p99 and
  requests/s from wrk's latency distribution.
"""
from __future__ import annotations

import asyncio
import os
import datetime as dt
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import igraph as ig
import leidenalg
import orjson
import psycopg
import redis.asyncio as aioredis
from rich.table import Table

from bench.env import BenchEnv
from bench.errors import BenchError
from bench.load import _run, tool
from bench.report import Figure, Status, code_version, machine, utc_now
from ducats.domain.graph import DAMPING, SEED
from ducats.keys import RedisKeys
from ducats.procs import WorkerProcess, free_port
from ducats.settings import Settings

ENDPOINTS = {"floor /api/ping": "/api/ping",
             "GET /api/network/intelligence": "/api/network/intelligence",
             "GET /api/consciousness/evolution": "/api/consciousness/evolution?hours=24&bucket=1h",
             "GET /api/patterns/emerging": "/api/patterns/emerging"}
REGIONS = ("eu", "na", "latam", "apac", "africa", "unknown")
GOAL_P99_MS = 500.0


@dataclass(frozen=True, slots=True)
class AnalyticsParams:
    holders: int = 100_000
    edges: int = 1_000_000
    groups: int = 500
    history_hours: int = 24
    wrk_seconds: float = 10.0
    connections: int = 8
    seed: int = 20261202
    timeout: float = 1800.0
    keep: bool = False


def synthetic_graph(p: AnalyticsParams) -> list[tuple[str, str, int]]:
    """``p.edges`` distinct (sender, receiver, weight): 85 % inside the sender's group."""
    rng = random.Random(p.seed)
    size = max(2, p.holders // p.groups)
    pairs: dict[tuple[int, int], int] = {}
    while len(pairs) < p.edges:
        s = rng.randrange(p.holders)
        if rng.random() < 0.85:
            base = s - s % size
            r = base + int(size * rng.random() ** 2)   # popular members near the group's start
        else:
            r = int(p.holders * rng.random() ** 3)     # a few holders everybody sends to
        r = min(r, p.holders - 1)
        if r != s:
            pairs[(s, r)] = pairs.get((s, r), 0) + rng.randint(1, 20)
    return [(f"h{s}", f"h{r}", w) for (s, r), w in pairs.items()]


def raw_igraph(edges: list[tuple[str, str, int]]) -> float:
    """Seconds for the same analysis with the libraries alone, from memory."""
    started = time.perf_counter()
    g = ig.Graph.TupleList(edges, directed=True, weights=True)
    g.connected_components(mode="weak")
    g.pagerank(weights="weight", damping=DAMPING, directed=True)
    u = g.copy()
    u.to_undirected(mode="collapse", combine_edges={"weight": "sum"})
    leidenalg.find_partition(u, leidenalg.ModularityVertexPartition, weights="weight", seed=SEED)
    return time.perf_counter() - started


def _seed_database(s: Settings, p: AnalyticsParams, edges: list[tuple[str, str, int]]) -> None:
    at = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)
    with psycopg.connect(s.database_url) as conn, conn.cursor() as cur:
        with cur.copy("COPY holders (holder, region, as_sender, seq, at) FROM STDIN") as copy:
            for i in range(p.holders):
                copy.write_row((f"h{i}", REGIONS[i % len(REGIONS)], True, i + 1, at))
        with cur.copy("COPY edges (region, sender, receiver, weight, transfers, first_seq, last_seq, first_at, "
                      "last_at, source) FROM STDIN") as copy:
            for k, (a, b, w) in enumerate(edges):
                copy.write_row((REGIONS[int(a[1:]) % len(REGIONS)], a, b, w, 1 + w // 5, k + 1, k + 1, at, at,
                                k % 4))
        cur.execute("INSERT INTO edge_positions SELECT p, %s FROM generate_series(0, 3) AS p", [len(edges)])
        # one snapshot a second, as the publisher keeps them, over the last history_hours
        now = dt.datetime.now(dt.UTC)
        seconds = p.history_hours * 3600
        with cur.copy("COPY metric_history (ts, seq, supply, circulation, holders, transfers, moves, velocity_1m, "
                      "velocity_1h, velocity_1d, snapshot) FROM STDIN") as copy:
            for i in range(seconds):
                ts = now - dt.timedelta(seconds=seconds - i)
                levels = {f"0.{d}": 390_000 - d * 1000 + i % 97 for d in range(10)}
                snap = {"version": i + 1, "generatedAt": ts.isoformat(), "supply": 3_900_000,
                        "consciousness": {"levels": levels, "stages": {str(k): 650_000 for k in range(6)}},
                        "temperature": {"cold": 3_000_000, "warm": 600_000, "hot": 300_000},
                        "velocity": {"1m": {"velocity": 0.01, "moves": 39_000}}}
                copy.write_row((ts, i + 1, 3_900_000, 3_000_000, p.holders, i * 20, i * 100, 0.01, 0.1, 1.0,
                                orjson.dumps(snap).decode()))
        conn.commit()
        conn.execute("ANALYZE")


async def _seed_redis(s: Settings, edges: list[tuple[str, str, int]], n: int = 10_000) -> None:
    client = aioredis.Redis.from_url(s.redis_url)
    keys = RedisKeys.of(s)
    try:
        now = time.time()
        await client.zadd(keys.hot_edges, {f"{a}\u2192{b}": now for a, b, _ in edges[:n]})
    finally:
        await client.aclose()


_RSS = re.compile(r'rss_mb"?[=:]\s*([\d.]+)')


def _analyze(env: BenchEnv, logs: Path, name: str, timeout: float) -> dict[str, Any]:
    """``ducats analyze --once`` in a child process: its result, wall time and peak RSS (the
    process's own ru_maxrss, which its ``analyze.run`` log line reports)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cli", "analyze", "--once"],
                          env={**os.environ, **env.ledger_env()},
                          capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - started
    (logs / f"{name}.log").write_text(proc.stderr)
    if proc.returncode != 0:
        raise BenchError(f"ducats analyze failed: {proc.stderr.strip().splitlines()[-1:]}")
    rss = _RSS.search(proc.stderr)
    if rss is None:
        raise BenchError(f"ducats analyze logged no analyze.run line: {proc.stderr[-300:]}")
    out = orjson.loads(proc.stdout)
    return {"wall_s": round(wall, 3), "compute_ms": out["ms"], "load_ms": out["loadMs"],
            "peak_rss_mb": float(rss.group(1)),
            "nodes": out["graph"]["nodes"], "edges": out["graph"]["edges"], "components": out["components"],
            "communities": out["communityCount"], "run": out["runId"]}


_LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


async def wrk_latency(url: str, *, seconds: float, connections: int) -> dict[str, float]:
    out = (await _run([tool("wrk"), "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
                       "--latency", url], timeout=seconds + 60)).decode()
    found = {q: float(v) * _UNIT[u] for q, v, u in _LATENCY.findall(out)}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if "50" not in found or "99" not in found or rps is None:
        raise BenchError(f"wrk printed no latency distribution: {out[-300:]}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"p50_ms": round(found["50"], 3), "p99_ms": round(found["99"], 3), "rps": float(rps.group(1)),
            "non_2xx": int(bad.group(1)) if bad else 0}


async def run_analytics(base: Settings, p: AnalyticsParams, status: Status, logs: Path
                        ) -> tuple[dict[str, Any], list[Figure]]:
    logs.mkdir(parents=True, exist_ok=True)
    env = await BenchEnv.create(base, keep=p.keep)
    s = env.settings
    api: WorkerProcess | None = None
    try:
        with status.step(f"generating {p.edges:,} edges between {p.holders:,} holders"):
            edges = await asyncio.to_thread(synthetic_graph, p)
        with status.step("writing holders, edges and metric history (COPY)"):
            await asyncio.to_thread(_seed_database, s, p, edges)
            await _seed_redis(s, edges)
        with status.step("raw baseline: igraph + leidenalg on the edge list in memory"):
            raw_s = await asyncio.to_thread(raw_igraph, edges)
        del edges
        with status.step("ducats analyze --once (first run)"):
            first = await asyncio.to_thread(_analyze, env, logs, "analyze-1", p.timeout)
        with status.step("ducats analyze --once (second run: communities matched)"):
            second = await asyncio.to_thread(_analyze, env, logs, "analyze-2", p.timeout)
        port = free_port()
        api = WorkerProcess(env=env.ledger_env(DUCATS_API_PORT=str(port), DUCATS_API_READ_LIMIT=""), command="api",
                            args=("--workers", "1"), log_path=logs / "api.log").start()
        url = f"http://127.0.0.1:{port}"
        await _wait(url + "/healthz", api)
        latencies: dict[str, dict[str, float]] = {}
        for name, path in ENDPOINTS.items():
            with status.step(f"wrk {p.wrk_seconds:.0f} s: {name}"):
                await _run([tool("wrk"), "-t1", "-c1", "-d1s", url + path], timeout=60)  # warm (caches, plans)
                latencies[name] = await wrk_latency(url + path, seconds=p.wrk_seconds, connections=p.connections)
        result: dict[str, Any] = {
            "benchmark": "analytics", "date": utc_now(), "machine": machine(), "code": code_version(),
            "holders": p.holders, "edges_requested": p.edges, "groups": p.groups, "history_hours": p.history_hours,
            "wrk_seconds": p.wrk_seconds, "connections": p.connections,
            "analyze": {"first": first, "second": second}, "raw_igraph_s": round(raw_s, 3),
            "raw_ratio": round(raw_s / (second["compute_ms"] / 1000), 3),
            "endpoints": latencies, "goal_p99_ms": GOAL_P99_MS,
            "within_goal": all(v["p99_ms"] <= GOAL_P99_MS and not v["non_2xx"] for v in latencies.values()),
            "database": env.database, "topic_prefix": s.topic_prefix}
        figures = [Figure(key="analyze", label="ducats analyze (second run), edges analysed", count=second["edges"],
                          unit="edges", seconds=second["compute_ms"] / 1000),
                   Figure(key="raw_igraph", label="raw igraph + leidenalg, same edges from memory",
                          count=second["edges"], unit="edges", seconds=raw_s, versus="analyze")]
        return result, figures
    finally:
        if api is not None:
            api.stop(timeout=15)
        client = aioredis.Redis.from_url(s.redis_url)
        try:
            doomed = [k async for k in client.scan_iter(match=f"{s.topic_prefix}:*")]
            if doomed and not p.keep:
                await client.delete(*doomed)
        finally:
            await client.aclose()
        await env.close()


async def _wait(url: str, proc: WorkerProcess, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as c:
        while True:
            try:
                if (await c.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not proc.alive:
                raise BenchError(f"ducats api exited: {proc.post_mortem()}")
            if time.monotonic() > deadline:
                raise BenchError("ducats api did not answer /healthz")
            await asyncio.sleep(0.1)


def analytics_table(result: dict[str, Any]) -> Table:
    t = Table(title=f"analytical endpoints under wrk ({result['connections']} connections, "
                    f"{result['wrk_seconds']:.0f} s each; goal p99 <= {GOAL_P99_MS:.0f} ms)")
    for col in ("endpoint", "p50 ms", "p99 ms", "requests/s", "non-2xx"):
        t.add_column(col, justify="left" if col == "endpoint" else "right")
    for name, v in result["endpoints"].items():
        t.add_row(name, f"{v['p50_ms']:.2f}", f"{v['p99_ms']:.2f}", f"{v['rps']:,.0f}", str(v["non_2xx"]))
    a = result["analyze"]
    t.add_row("ducats analyze: first / second run (s)", "", f"{a['first']['wall_s']} / {a['second']['wall_s']}",
              f"peak RSS {max(a['first']['peak_rss_mb'], a['second']['peak_rss_mb'])} MB", "")
    return t
