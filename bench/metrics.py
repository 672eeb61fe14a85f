"""``ducats bench metrics``: how fast a Faust worker folds the accepted log.

N accepted events (mints, then transfers with balances, as the ledger writes
them) are put on private topics first, as the ledger writes them: one record
each on the accepted topic, and on the batches topic (the worker's input) one
record per ledger batch of LEDGER_BATCH events and partition. Then one worker
starts and the clock runs until the Redis snapshot counts all N. Reported
apart: the start-up (until the snapshot first counts an event: joining the
group, recovering the tables) and the steady state (the events counted after
that, over the time they took). The same-run baseline is raw aiokafka:
consume and orjson-decode the N per-event records.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from bench.env import BenchEnv
from bench.freshness import paced_send, close_with_worker
from bench.report import Figure, Status, machine, utc_now
from ducats.kafka import key_partition, make_producer, topic_partitions
from ducats.procs import WorkerProcess
from ducats.settings import Settings
from schemas.batches import Chain
from schemas.ducat_id import ducat_str

TS = "2026-11-26T12:00:00+00:00"
LEDGER_BATCH = 1000  # accepted events per ledger batch (its batches are up to DUCATS_LEDGER_BATCH records)


def accepted_log(n: int, holders: int = 500) -> list[tuple[bytes, bytes]]:
    """``holders`` mints of 100 ducats, then transfers between them: valid, with balances."""
    out: list[tuple[bytes, bytes]] = []
    names = [f"h{i:04d}" for i in range(holders)]
    for i, h in enumerate(names):
        out.append((h.encode(), orjson.dumps({"seq": i + 1, "mintId": f"m{i}", "batch": i + 1, "firstSeq": 1,
                                              "count": 100, "holder": h, "timestamp": TS, "appliedAt": TS,
                                              "holderBalance": 100})))
    start = dt.datetime.fromisoformat(TS)
    for k in range(n - holders):
        seq, frm, to = holders + k + 1, names[k % holders], names[(k * 7 + 1) % holders]
        # Event time advances 1 ms per transfer, as a live log's does (not one timestamp for all).
        ts = (start + dt.timedelta(milliseconds=k)).isoformat()
        ids = [ducat_str((k % holders + 1) * 1_000_000 + 1 + j) for j in range(3)]
        out.append((frm.encode(), orjson.dumps({
            "seq": seq, "transactionId": f"t{k}", "timestamp": ts, "from": frm, "to": to, "ducatIds": ids,
            "ducatCount": 3, "consciousnessImpact": 0.119, "appliedAt": TS, "fromBalance": 97, "toBalance": 103})))
    return out


async def send_batches(s: Settings, log: list[tuple[bytes, bytes]]) -> int:
    """The batches topic as the ledger writes it for ``log``; returns the records sent."""
    partitions = len(await topic_partitions(s, [s.topic_accepted_batches]))
    producer = make_producer(s, max_request_size=8 << 20)
    await producer.start()
    sent = 0
    chain = Chain()
    try:
        for i in range(0, len(log), LEDGER_BATCH):
            by_partition: dict[int, list[tuple[int, bytes]]] = {}
            for key, value in log[i:i + LEDGER_BATCH]:
                by_partition.setdefault(key_partition(key, partitions), []).append((orjson.loads(value)["seq"], value))
            for p, values in sorted(by_partition.items()):
                for record in chain.records(p, values):
                    await producer.send(s.topic_accepted_batches, record, partition=p)
                    sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _raw_consume(s: Settings, topic: str, n: int) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await topic_partitions(s, [topic])
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        started, got = time.perf_counter(), 0
        while got < n:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                for r in records:
                    orjson.loads(r.value)
                got += len(records)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def run_metrics(base: Settings, *, events: int, status: Status, logs: Any) -> tuple[dict[str, Any], list[Figure]]:
    env = await BenchEnv.create(base)
    s = env.settings
    worker = WorkerProcess(env=env.ledger_env(),
                           command="worker", log_path=logs / "metrics-worker.log")
    try:
        status.say(f"writing {events:,} accepted events")
        log = accepted_log(events)
        await paced_send(s, s.topic_accepted, log, 10_000_000)
        records = await send_batches(s, log)
        status.say(f"{records:,} batch records of up to {LEDGER_BATCH:,} events")
        raw = await _raw_consume(s, s.topic_accepted, events)
        client = aioredis.Redis.from_url(s.redis_url)
        started = time.perf_counter()
        worker.start()
        status.say("worker folding the accepted log")
        deadline = time.monotonic() + 600
        first: tuple[float, int] | None = None  # when the snapshot first counted events, and how many
        while True:
            snap = await client.get(s.redis_key("metrics", "snapshot"))
            counted = orjson.loads(snap)["position"]["events"] if snap else 0
            if counted and first is None:
                first = (time.perf_counter(), counted)
            if counted >= events:
                break
            assert worker.alive and time.monotonic() < deadline, "the worker stopped or timed out"
            await asyncio.sleep(0.02)
        ended = time.perf_counter()
        await client.aclose()
    finally:
        worker.stop()
        await close_with_worker(env)
    assert first is not None
    took, (steady_from, steady_base) = ended - started, first
    figures = [Figure(key="worker", label="worker start -> snapshot counts all events (incl. start-up)",
                      count=events, unit="events", seconds=took),
               Figure(key="worker_steady", label="steady state: events counted after the first snapshot",
                      count=events - steady_base, unit="events", seconds=ended - steady_from),
               Figure(key="worker_startup", label="start-up: worker start -> first snapshot counting events",
                      count=steady_base, unit="events", seconds=steady_from - started),
               Figure(key="raw_consume", label="raw aiokafka consume + orjson decode", count=events,
                      unit="events", seconds=raw, versus="worker_steady")]
    return {"benchmark": "metrics", "date": utc_now(), "machine": machine(), "events": events,
            "batch_records": records, "topic_prefix": s.topic_prefix, "app_id": s.app_id}, figures
