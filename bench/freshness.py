"""``ducats bench freshness``: how long an accepted event takes to show in the
Redis snapshot, under a steady load.

A ledger and a Faust worker run as processes on a private database and private
topics. Transfers are published at ``rate`` per second for ``seconds``. One task
reads the accepted topic (read_committed) and notes, per ledger seq, when its
record was written to Kafka (the record's timestamp); another polls the Redis
snapshot every few milliseconds and notes when each seq became visible (the
snapshot's ``position.seq`` reached it and it was ``complete``). Freshness of a
seq = visible - accepted. The same-run baseline is raw aiokafka: the latency
from a produce (acks=all) to its consume, at the same rate, on the same broker.
"""
from __future__ import annotations

import asyncio
import bisect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from rich.table import Table

from bench.env import BenchEnv
from bench.report import Status, machine, utc_now
from bench.workload import TransferChain, holder_names, holdings_of, mint_plan
from ducats.kafka import TopicSpec, make_producer, topic_partitions
from ducats.procs import WorkerProcess
from ducats.settings import Settings
from reads.pipeline import live_workers, wait_caught_up

POLL_S = 0.005
FAUST_TOPICS = ("partition-metrics-changelog", "__assignor-__leader")


@dataclass(frozen=True, slots=True, kw_only=True)
class FreshnessParams:
    rate: int = 1000
    seconds: float = 20.0
    holders: int = 200
    per_holder: int = 100
    timeout: float = 600.0
    keep: bool = False


async def close_with_worker(env: BenchEnv) -> None:
    """Close ``env`` and also remove what a Faust worker left: its changelog and
    assignor topics and the Redis keys under the private prefix."""
    s = env.settings
    env.topics += [f"{s.app_id}-{name}" for name in FAUST_TOPICS]
    if not env.keep:
        client = aioredis.Redis.from_url(s.redis_url)
        try:
            keys = [k async for k in client.scan_iter(match=f"{s.topic_prefix}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
    await env.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _accepted_times(s: Settings, out: dict[tuple[int, int], float], stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, isolation_level="read_committed")
    await consumer.start()
    try:
        tps = await topic_partitions(s, [s.topic_accepted])
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=50)).values():
                for r in records:
                    out[(r.partition, orjson.loads(r.value)["seq"])] = r.timestamp / 1000
    finally:
        await consumer.stop()


async def _visible_times(s: Settings, out: dict[int, list[tuple[int, float]]], stop: asyncio.Event) -> None:
    """Per accepted partition: (seq counted in the snapshot, first time seen)."""
    client = aioredis.Redis.from_url(s.redis_url)
    try:
        while not stop.is_set():
            raw = await client.get(s.redis_key("metrics", "snapshot"))
            now = time.time()
            if raw:
                for p, seq in orjson.loads(raw)["position"]["partitions"].items():
                    seen = out.setdefault(int(p), [])
                    if not seen or seq > seen[-1][0]:
                        seen.append((seq, now))
            await asyncio.sleep(POLL_S)
    finally:
        await client.aclose()


async def paced_send(s: Settings, topic: str, values: list[tuple[bytes, bytes]], rate: int) -> None:
    """Send ``values`` at about ``rate`` records a second (a slice every 10 ms), then flush."""
    producer = make_producer(s)
    await producer.start()
    try:
        start, step = time.monotonic(), max(1, rate // 100)  # a slice every 10 ms
        for i in range(0, len(values), step):
            for key, value in values[i:i + step]:
                await producer.send(topic, value, key=key)
            await asyncio.sleep(max(0.0, start + (i + step) / rate - time.monotonic()))
        await producer.flush()
    finally:
        await producer.stop()


async def raw_kafka_latency(env: BenchEnv, n: int, rate: int) -> list[float]:
    """Produce -> consume latency of ``n`` small messages at ``rate``/s on a fresh topic."""
    s = env.settings
    topic = f"{s.topic_prefix}.bench-latency"
    await env.add_topics([TopicSpec(name=topic, partitions=s.topic_partitions)])
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=s.kafka_bootstrap, auto_offset_reset="latest")
    await consumer.start()
    await consumer.getmany(timeout_ms=500)  # join and position at the end before producing
    latencies: list[float] = []

    async def consume() -> None:
        while len(latencies) < n:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                latencies.extend(time.time() - r.timestamp / 1000 for r in records)

    reader = asyncio.create_task(consume())
    try:
        await paced_send(s, topic, [(str(i % 97).encode(), b"x" * 300) for i in range(n)], rate)
        await asyncio.wait_for(reader, 120)
    finally:
        await consumer.stop()
    return latencies


async def run_freshness(base: Settings, p: FreshnessParams, status: Status, logs: Path) -> dict[str, Any]:
    env = await BenchEnv.create(base, keep=p.keep)
    s = env.settings
    procs = [WorkerProcess(env=env.ledger_env(), command="ledger", log_path=logs / "ledger.log"),
             WorkerProcess(env=env.ledger_env(),
                           command="worker", log_path=logs / "worker.log")]
    try:
        for proc in procs:
            proc.start()
        while not await live_workers(s):
            await asyncio.sleep(0.2)
        stamp = utc_now()
        mints = mint_plan(holders=holder_names(p.holders), per_holder=p.per_holder, timestamp=stamp)
        await paced_send(s, s.topic_mints, [(m.holder.encode(), m.to_json()) for m in mints], 100_000)
        await wait_caught_up(s, timeout=p.timeout)
        chain = TransferChain(holdings=holdings_of(mints), ducats_per_transfer=3, seed=11)
        n = int(p.rate * p.seconds)
        moves = [chain.next(transaction_id=f"f-{i}", timestamp=stamp) for i in range(n)]
        accepted: dict[tuple[int, int], float] = {}
        visible: dict[int, list[tuple[int, float]]] = {}
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_accepted_times(s, accepted, stop)),
                 asyncio.create_task(_visible_times(s, visible, stop))]
        status.say(f"publishing {n:,} transfers at {p.rate:,}/s")
        await paced_send(s, s.topic_transactions, [(m.sender.encode(), m.to_transfer().to_json()) for m in moves],
                          p.rate)
        await wait_caught_up(s, timeout=p.timeout)
        last = len(mints) + n
        deadline = time.monotonic() + 60
        while max((v[-1][0] for v in visible.values() if v), default=0) < last and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
        lat = []
        for (partition, seq), at in accepted.items():
            seen = visible.get(partition, [])
            i = bisect.bisect_left([v[0] for v in seen], seq)
            if seq > len(mints) and i < len(seen):
                lat.append(seen[i][1] - at)
        status.say("raw aiokafka latency baseline")
        raw = await raw_kafka_latency(env, n, p.rate)
        return {"benchmark": "freshness", "date": utc_now(), "machine": machine(), "rate": p.rate,
                "transfers": n, "measured": len(lat), "missing": n - len(lat),
                "pipeline_ms": _summary(lat), "raw_kafka_ms": _summary(raw),
                "p99_ratio": round(percentile(lat, 0.99) / percentile(raw, 0.99), 1)}
    finally:
        for proc in procs:
            proc.stop()
        await close_with_worker(env)


def _summary(values: list[float]) -> dict[str, float]:
    return {k: round(percentile(values, q) * 1000, 1) for k, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))} | \
        {"max": round(max(values) * 1000, 1) if values else float("nan")}


def freshness_table(result: dict[str, Any]) -> Table:
    t = Table(title=f"bench freshness: {result['transfers']:,} transfers at {result['rate']:,}/s")
    for col in ("", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        t.add_column(col, justify="right")
    for label, key in (("accepted -> Redis snapshot", "pipeline_ms"), ("raw aiokafka produce -> consume", "raw_kafka_ms")):
        v = result[key]
        t.add_row(label, *(f"{v[k]:.1f}" for k in ("p50", "p90", "p99", "max")))
    t.add_row("p99 ratio", "", "", f"{result['p99_ratio']}x", "")
    return t
