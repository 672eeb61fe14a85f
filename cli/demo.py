"""``ducats demo``: the whole pipeline on a small workload.

It migrates the database, creates the topics, starts a ledger and a Faust
worker as real processes, mints 10 batches of 1,000 ducats to the treasury,
publishes 2,000 transfers (valid ones, invalid ones of every kind, and a few
malformed records), waits for the ledger and the snapshot to catch up, and
runs the network analysis once (`ducats analyze --once`), and reports what
each stage did. Batch numbers and transaction ids are new on
every run, so the demo can be repeated on the same database.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis

from ducats.connect import pg_errors, pg_sync_connect, redis_connect, redis_errors_of
from ducats.errors import ServiceUnavailable
from ducats.kafka import end_offsets, ensure_topics, kafka_errors, make_producer, read_since
from ducats.keys import RedisKeys
from ducats.procs import WorkerProcess
from ducats.settings import Settings
from schemas.ducat_id import ducat_str
from reads import snapshot as reads
from reads.pipeline import live_workers, wait_caught_up
from sinks.postgres.migrate import migrate
from streams.analyze import run_once as run_analysis
from streams.topics import pipeline_topics

BATCHES, SIZE, HOLDERS, TRANSFERS = 10, 1000, 20, 2000


def demo_transfers(*, first_batch: int, run: str, start: dt.datetime, seed: int = 7) -> list[bytes]:
    """Treasury hands out ducats, holders trade them, and some transfers break
    each ledger rule on purpose (not_holder, self_transfer, unknown_ducat,
    duplicate_transaction, duplicate_ducat)."""
    rng = random.Random(seed)
    ids = [(first_batch + b) * 1_000_000 + s for b in range(BATCHES) for s in range(1, SIZE + 1)]
    holders = [f"holder-{i:02d}" for i in range(HOLDERS)]
    owned: dict[str, list[int]] = {"treasury": list(ids), **{h: [] for h in holders}}
    out: list[dict[str, Any]] = []
    for i in range(TRANSFERS):
        frm = "treasury" if i < 400 else rng.choice([h for h in holders if owned[h]])
        mine = rng.sample(owned[frm], min(len(owned[frm]), rng.randint(1, 5)))
        to = rng.choice([h for h in holders if h != frm])
        tx = f"{run}-{i}" if i % 101 else f"{run}-{i - 1}"  # every 101st reuses an id
        if i % 97 == 0:
            to = frm  # self_transfer
        elif i % 89 == 0:
            mine = mine + [ids[-1] + 500_000]  # unknown_ducat
        elif i % 83 == 0:
            mine = mine + mine[:1]  # duplicate_ducat
        elif i % 79 == 0 and frm != "treasury":
            mine = mine + [rng.choice(owned["treasury"])]  # not_holder
        elif i % 101:
            for d in mine:
                owned[frm].remove(d)
                owned[to].append(d)
        when = (start + dt.timedelta(seconds=0.5 * i)).isoformat()
        out.append({"transactionId": tx, "timestamp": when, "from": frm, "to": to,
                    "ducatIds": [ducat_str(d) for d in mine]})
    return [orjson.dumps(t) for t in out]


MALFORMED = [b"{not json", orjson.dumps({"transactionId": "x", "timestamp": "2026-01-01T00:00:00Z",
                                         "from": "a", "to": "b", "ducatIds": "BATCH-1-000001"}),
             orjson.dumps({"transactionId": "y", "from": "a", "to": "b", "ducatIds": ["BATCH-1-000001"]})]


async def _send(settings: Settings, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = make_producer(settings)
    try:
        with kafka_errors(settings.kafka_bootstrap):
            await producer.start()
            for key, value in values:
                await producer.send(topic, value, key=key)
            await producer.flush()
    finally:
        await producer.stop()


async def _wait_ready(settings: Settings, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not await live_workers(settings):
        if time.monotonic() > deadline:
            raise ServiceUnavailable("the Faust worker did not become ready; see .state/logs/demo-worker.log")
        await asyncio.sleep(0.2)


async def _wait_snapshot(settings: Settings, client: aioredis.Redis, seq: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        snap = await reads.snapshot(client, RedisKeys.of(settings))
        if snap and reads.caught_up(snap, seq):
            return snap
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"the snapshot did not reach ledger seq {seq}")
        await asyncio.sleep(0.2)


def _ledger_seq(settings: Settings) -> int:
    with pg_sync_connect(settings.database_url) as conn, pg_errors(settings.database_url, session=True):
        return int(conn.execute("SELECT last_seq FROM ledger_state").fetchone()[0])  # type: ignore[index]


async def run_demo(settings: Settings, *, say: Callable[[str], Any] = print) -> dict[str, Any]:
    """Run the demo; return counts per stage and the final snapshot."""
    migrate(settings.database_url, timescale=settings.timescale)
    await ensure_topics(settings, pipeline_topics(settings))
    outputs = [settings.topic_accepted, settings.topic_rejected, settings.topic_dlq]
    before = await end_offsets(settings, outputs)
    first_batch = (int(time.time()) * 10) % 900_000_000 + 1
    logs = settings.state_dir / "logs"
    with WorkerProcess(env={}, log_path=logs / "demo-ledger.log", command="ledger"), \
            WorkerProcess(env={}, log_path=logs / "demo-worker.log", command="worker"):
        say(f"ledger and worker started (logs in {logs})")
        await _wait_ready(settings)
        mints = [orjson.dumps({"mintId": f"demo-{first_batch + b}", "batch": first_batch + b, "firstSeq": 1,
                               "count": SIZE, "holder": "treasury", "timestamp": dt.datetime.now(dt.UTC).isoformat()})
                 for b in range(BATCHES)]
        await _send(settings, settings.topic_mints, [(b"treasury", m) for m in mints])
        await wait_caught_up(settings)
        say(f"minted {BATCHES} x {SIZE} ducats (batches {first_batch}..{first_batch + BATCHES - 1})")
        transfers = demo_transfers(first_batch=first_batch, run=f"demo-{first_batch}", start=dt.datetime.now(dt.UTC))
        await _send(settings, settings.topic_transactions,
                    [(orjson.loads(t)["from"].encode(), t) for t in transfers] + [(b"bad", m) for m in MALFORMED])
        await wait_caught_up(settings)
        say(f"published {len(transfers)} transfers and {len(MALFORMED)} malformed records; the ledger caught up")
        client = await redis_connect(settings.redis_url)
        try:
            with redis_errors_of(settings.redis_url):
                snap = await _wait_snapshot(settings, client, _ledger_seq(settings))
        finally:
            await client.aclose()
        network = await run_analysis(settings)  # the worker's edges are in PostgreSQL by now
        say(f"network analysed: {network['graph']['nodes']} holders, {network['graph']['edges']} edges")
    accepted = await read_since(settings, settings.topic_accepted, before)
    rejected = await read_since(settings, settings.topic_rejected, before)
    letters = await read_since(settings, settings.topic_dlq, before)
    return {"accepted": len(accepted), "rejected": Counter(r["reason"] for r in rejected),
            "deadLetters": Counter(d["reason"] for d in letters), "snapshot": snap, "network": network}
