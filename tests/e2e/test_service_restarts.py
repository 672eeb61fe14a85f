"""The pipeline rides out restarts of every service it uses.

On a private set of services (own state folder, own ports), a ledger and a
worker run as real processes while a seeded transfer workload flows. Each of
Kafka, PostgreSQL and Redis is restarted under them, once by a clean stop and
start and once by ``kill -9`` of its main process, each right after a burst of
transfers was published, so that the processes are in the middle of their
work. Neither process is restarted by the test. Afterwards the holders, the
accepted and rejected topics and the snapshot equal the reference model's
replay of the same log (a clean run): nothing lost, nothing doubled.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import orjson
import psycopg

from ducats.kafka import ensure_topics
from ducats.procs import WorkerProcess, free_port, post_mortems
from sinks.postgres.migrate import migrate
from streams.topics import pipeline_topics
from tests.e2e.test_metrics import clock, ledger_totals, wait_snapshot_at
from tests.fixtures.ledger import publish, read_all, wait_caught_up, wait_worker_ready
from tests.fixtures.private import Stack, step
from tests.reference import make_workload

FAULTS = [("kafka", "stop"), ("kafka", "kill"), ("postgres", "stop"), ("postgres", "kill"),
          ("redis", "stop"), ("redis", "kill")]


async def test_ledger_and_worker_ride_out_every_service_restart(stack: Stack, tmp_path: Path) -> None:
    s = stack.settings()
    migrate(s.database_url, timescale="auto")
    await ensure_topics(s, pipeline_topics(s))
    w = make_workload(seed=31, batches=10, batch_size=1000, transfers=14_000, clock=clock)
    await publish(s, s.topic_mints, [(b"k", m) for m in w.mints])

    env = s.to_env(DUCATS_LEDGER_METRICS_PORT="0", DUCATS_WORKER_METRICS_PORT="0",
                   DUCATS_WORKER_WEB_PORT=str(free_port()), DUCATS_LEDGER_BATCH="100", DUCATS_METRICS_BATCH="2")
    ledger = WorkerProcess(env=env, command="ledger", log_path=tmp_path / "ledger.log").start()
    worker = WorkerProcess(env=env, command="worker", log_path=tmp_path / "worker.log").start()
    try:
        await wait_caught_up(s)
        await wait_worker_ready(s, worker)
        pids = (ledger.pid, worker.pid)
        chunk = len(w.transfers) // (len(FAULTS) + 1)
        started = time.monotonic()
        for i, (name, how) in enumerate(FAULTS):
            await step(f"publish burst {i}", publish(s, s.topic_transactions, w.transfers[i * chunk:(i + 1) * chunk]))
            # while the burst is being applied and folded:
            await step(f"{how} {name}", asyncio.to_thread(stack.fault, name, how), timeout=180)
            if name == "kafka":  # the test's own producer waits for every partition's leader
                await step("topics ready", ensure_topics(s, pipeline_topics(s)))
            print(f"{time.monotonic() - started:6.1f} s  {how} {name}: done", flush=True)
            assert ledger.alive and worker.alive, f"a process exited during the {how} of {name}:\n" + post_mortems(
                (ledger, worker))
        await step("publish the rest", publish(s, s.topic_transactions, w.transfers[len(FAULTS) * chunk:]))
        await wait_caught_up(s, timeout=240)
        expected_seq = len(w.mints) + len(w.reference.accepted)
        snap = await wait_snapshot_at(s, expected_seq, [worker], timeout=240)
        assert (ledger.pid, worker.pid) == pids and ledger.alive and worker.alive
    finally:
        ledger.stop()
        worker.stop()

    with psycopg.connect(s.database_url) as conn:
        rows = conn.execute("SELECT id, holder FROM ducats").fetchall()
    assert {f"BATCH-{i // 1_000_000}-{i % 1_000_000:06d}": h for i, h in rows} == w.reference.holder
    accepted = [orjson.loads(r.value) for r in await read_all(s, s.topic_accepted)]
    assert sorted(a["seq"] for a in accepted) == list(range(1, expected_seq + 1))  # gapless, no doubles
    assert Counter(a["transactionId"] for a in accepted if "transactionId" in a) == Counter(w.reference.accepted)
    rejected = [orjson.loads(r.value) for r in await read_all(s, s.topic_rejected)]
    assert Counter((r["transactionId"], r["reason"]) for r in rejected) == Counter(w.reference.rejected)

    totals = ledger_totals(s)
    moves = sum(a["ducatCount"] for a in accepted if "transactionId" in a)
    assert (snap["supply"], snap["circulation"], snap["holders"]) == (
        totals["supply"], totals["circulation"], totals["holders"])
    assert (snap["transfers"], snap["moves"], snap["position"]["events"]) == (
        len(w.reference.accepted), moves, expected_seq)

    ledger_log, worker_log = (tmp_path / "ledger.log").read_text(), (tmp_path / "worker.log").read_text()
    assert "health.waiting" in ledger_log and "health.ready" in ledger_log  # it noticed, waited, resumed
    assert "health.waiting" in worker_log and "health.ready" in worker_log
