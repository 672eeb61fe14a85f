"""Streaming metrics end to end: ledger -> accepted log -> Faust workers ->
Redis snapshot, checked against PostgreSQL and a reference computation over
the accepted log."""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psycopg
import redis.asyncio as aioredis

from ducats.domain.metrics import KEEP, WINDOWS
from ducats.procs import WorkerProcess
from ducats.settings import Settings
from tests.fixtures.ledger import publish, read_all, wait_caught_up
from tests.reference import make_workload

START = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


def clock(i: int) -> str:
    """Event times 0.3 s apart: 50k transfers span about 4 hours."""
    return (START + dt.timedelta(seconds=0.3 * i)).isoformat()


def ledger_totals(s: Settings, treasury: str = "treasury") -> dict[str, int]:
    with psycopg.connect(s.database_url) as conn:
        row = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE holder <> %s), count(DISTINCT holder),
                      (SELECT last_seq FROM ledger_state) FROM ducats""", [treasury]).fetchone()
    assert row is not None
    return {"supply": row[0], "circulation": row[1], "holders": row[2], "seq": row[3]}


async def snapshot(s: Settings) -> dict[str, Any] | None:
    client = aioredis.Redis.from_url(s.redis_url)
    try:
        raw = await client.get(s.redis_key("metrics", "snapshot"))
        return None if raw is None else orjson.loads(raw)  # type: ignore[no-any-return]
    finally:
        await client.aclose()


async def wait_snapshot_at(s: Settings, seq: int, procs: list[WorkerProcess], timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        snap = await snapshot(s)
        if snap and snap["position"]["seq"] == seq and snap["position"]["complete"]:
            return snap
        assert all(p.alive for p in procs), "a worker died"
        assert time.monotonic() < deadline, f"snapshot stuck at {snap and snap['position']}"
        await asyncio.sleep(0.2)


async def reference_windows(s: Settings) -> dict[str, dict[str, int]]:
    """Moves per tumbling event-time window, straight from the accepted log."""
    out: dict[str, dict[str, int]] = {name: defaultdict(int) for name in WINDOWS}
    for rec in await read_all(s, s.topic_accepted):
        e = orjson.loads(rec.value)
        if "transactionId" in e:
            t = int(dt.datetime.fromisoformat(e["timestamp"]).timestamp())
            for name, width in WINDOWS.items():
                out[name][str(t - t % width)] += e["ducatCount"]
    return {k: dict(v) for k, v in out.items()}


async def merged_windows(s: Settings) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """The windows summed over the partials in Redis, and per size the first
    window that every partition still keeps (each prunes behind its own watermark)."""
    client = aioredis.Redis.from_url(s.redis_url)
    try:
        partials = [orjson.loads(v) for v in (await client.hgetall(s.redis_key("metrics", "partials"))).values()]
    finally:
        await client.aclose()
    out: dict[str, dict[str, int]] = {name: defaultdict(int) for name in WINDOWS}
    for pm in partials:
        for name, slot in pm["windows"].items():
            for start, n in slot.items():
                out[name][start] += n
    horizon = {name: max(pm["watermark"] - pm["watermark"] % w - (KEEP[name] - 1) * w for pm in partials)
               for name, w in WINDOWS.items()}
    return {k: dict(v) for k, v in out.items()}, horizon


def kept(windows: dict[str, dict[str, int]], horizon: dict[str, int]) -> dict[str, dict[str, int]]:
    return {name: {k: v for k, v in slot.items() if int(k) >= horizon[name]} for name, slot in windows.items()}


async def run_workload(s: Settings, ledger_runner: Callable[..., Awaitable[None]], transfers: int,
                       seed: int) -> None:
    w = make_workload(seed=seed, batches=20, batch_size=1000, transfers=transfers, clock=clock)
    await publish(s, s.topic_mints, [(b"k", x) for x in w.mints])
    await ledger_runner(s)
    await wait_caught_up(s)
    await publish(s, s.topic_transactions, w.transfers)


def check(snap: dict[str, Any], totals: dict[str, int]) -> None:
    assert snap["position"]["seq"] == totals["seq"] == snap["position"]["events"]
    assert snap["supply"] == totals["supply"]
    assert snap["circulation"] == totals["circulation"]
    assert snap["holders"] == totals["holders"]
    for name in WINDOWS:
        v = snap["velocity"][name]
        assert v["velocity"] == round(v["moves"] / snap["circulation"], 6)


async def test_snapshot_is_exact_after_50k_transfers(
        ledger_settings: Settings, ledger_runner: Callable[..., Awaitable[None]],
        process_factory: Callable[..., WorkerProcess]) -> None:
    s = ledger_settings
    worker = process_factory("worker", s)
    await run_workload(s, ledger_runner, transfers=50_000, seed=4)
    await wait_caught_up(s, timeout=300)
    totals = ledger_totals(s)
    snap = await wait_snapshot_at(s, totals["seq"], [worker])
    check(snap, totals)
    windows, horizon = await merged_windows(s)
    reference = await reference_windows(s)
    assert len(reference["1m"]) > KEEP["1m"]  # the workload outlives the kept 1-minute windows
    assert kept(windows, horizon) == kept(reference, horizon)
    assert len(kept(windows, horizon)["1m"]) >= KEEP["1m"] - 1
    assert snap["transfers"] + snap["mints"] == totals["seq"]
