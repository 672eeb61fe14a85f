"""A running `ducats worker` rides out restarts of Redis and PostgreSQL.

Private services (own state folder, own ports), a ledger and a worker process,
a seeded transfer workload published in phases; in the middle of four of them
a service restarts: Redis cleanly and by SIGKILL, PostgreSQL cleanly and by
SIGKILL. The worker must stay the same live process, say it waits and then that
it is ready again, and end with a snapshot equal to PostgreSQL's exact counts.

Redis keeps nothing on disk, so each Redis restart also wipes the partials: the
workers must write them again from their tables (the seq guards make that safe).

Start-up, by contrast, is strict: a worker started while a service is down, or
before the topics exist, says so in one line and exits 75 (or 1).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from ducats.errors import ServiceUnavailable
from ducats.kafka import ensure_topics, make_producer
from ducats.procs import WorkerProcess, free_port
from ducats.settings import PROJECT_ROOT, Settings, load_settings
from reads.pipeline import wait_caught_up
from sinks.postgres.migrate import migrate
from streams.topics import pipeline_topics
from tests.fixtures.ledger import publish, wait_worker_ready
from tests.reference import make_workload

SERVICES = PROJECT_ROOT / "deploy" / "services.sh"
START = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
PHASE_S = 60.0  # bound of one phase: publish, restart, wait for the worker to say ready again
PER_PHASE = 1_500  # transfers per phase, published over about PUBLISH_S seconds
PUBLISH_S = 3.0


def clock(i: int) -> str:
    return (START + dt.timedelta(seconds=0.5 * i)).isoformat()


@pytest.fixture
def private_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {"DUCATS_STATE_DIR": str(tmp_path / "state"), "KAFKA_PORT": str(free_port()),
           "KAFKA_CONTROLLER_PORT": str(free_port()), "POSTGRES_PORT": str(free_port()),
           "REDIS_PORT": str(free_port())}
    yield env
    subprocess.run(["bash", str(SERVICES), "down"], env={**os.environ, **env}, capture_output=True, timeout=300)
    pg = tmp_path / "state" / "postgres"
    if pg.is_symlink():  # relocated cluster outside the 0700 pytest folder
        shutil.rmtree(pg.resolve(), ignore_errors=True)
        with contextlib.suppress(OSError):
            pg.resolve().parent.rmdir()


class Services:
    """The private services, restarted the way an operator or a crash would."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.state = Path(env["DUCATS_STATE_DIR"])
        self.notes: list[str] = []

    def run(self, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SERVICES), *args], env={**os.environ, **self.env},
                              capture_output=True, text=True, timeout=timeout)

    def up(self, *names: str) -> None:
        proc = self.run("up", *names)
        if proc.returncode != 0:  # `up` right after a SIGKILL is being made robust elsewhere
            self.notes.append(f"`services.sh up {' '.join(names)}` failed once: {proc.stderr.strip()[-300:]}")
            proc = self.run("up", *names)
        assert proc.returncode == 0, proc.stderr

    def restart(self, name: str) -> None:
        proc = self.run("down", name)
        assert proc.returncode == 0, proc.stderr
        time.sleep(1.0)  # down for a moment, long enough for the worker to notice
        self.up(name)

    def kill(self, name: str) -> None:
        os.kill(self.pid(name), signal.SIGKILL)
        time.sleep(0.5)
        self.up(name)

    def pid(self, name: str) -> int:
        if name == "redis":
            path = self.state / "redis" / "redis.pid"
        else:  # the postmaster: first line of postmaster.pid in the (maybe relocated) data folder
            path = (self.state / "postgres" / "data").resolve() / "postmaster.pid"
        return int(path.read_text().splitlines()[0])


@pytest.fixture
async def stack(private_env: dict[str, str], tmp_path: Path) -> AsyncIterator[tuple[Settings, Services]]:
    services = Services(private_env)
    services.up()  # all three
    tag = uuid.uuid4().hex[:8]
    s = load_settings(kafka_bootstrap=f"127.0.0.1:{private_env['KAFKA_PORT']}",
                      database_url=f"postgresql://ducats@127.0.0.1:{private_env['POSTGRES_PORT']}/ducats",
                      redis_url=f"redis://127.0.0.1:{private_env['REDIS_PORT']}/0",
                      state_dir=services.state, topic_prefix=f"r{tag}", app_id=f"ducats-r{tag}",
                      log_format="json")
    await asyncio.to_thread(migrate, s.database_url, timescale="auto")
    await ensure_topics(s, pipeline_topics(s))
    yield s, services


class Pipeline:
    """The ledger and the worker under test, as processes."""

    def __init__(self, s: Settings, logs: Path) -> None:
        self.s, self.logs = s, logs
        self.ledger_starts = 0
        self.ledger = self._start("ledger")
        self.worker = self._start("worker")

    def _start(self, command: str) -> WorkerProcess:
        env = self.s.to_env(DUCATS_WORKER_WEB_PORT=str(free_port()), DUCATS_LEDGER_METRICS_PORT="0",
                            DUCATS_WORKER_METRICS_PORT="0")
        if command == "ledger":
            self.ledger_starts += 1
        return WorkerProcess(env=env, command=command, log_path=self.logs / f"{command}.log").start()

    def keep_ledger(self) -> None:
        """A ledger that exited is started again: this test is about the worker. The ledger
        rides out PostgreSQL restarts itself since f43aa20 (test_ledger_rides_out.py), so
        this should not happen; the test prints a note when it did."""
        if not self.ledger.alive:
            self.ledger = self._start("ledger")

    def stop(self) -> None:
        for proc in (self.worker, self.ledger):
            proc.kill()


def health_events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_bytes().splitlines():
        with contextlib.suppress(orjson.JSONDecodeError):
            rec = orjson.loads(line)
            if isinstance(rec, dict) and str(rec.get("event", "")).startswith("health."):
                out.append(rec)
    return out


async def wait_waited_then_ready(p: Pipeline, service: str, seen: int) -> int:
    """Until the worker's log has, after its first ``seen`` health lines, a health.waiting
    naming ``service`` followed by a health.ready; returns the count of health lines."""
    deadline = time.monotonic() + PHASE_S
    while True:
        events = health_events(p.worker.log_path)[seen:]
        waited = [i for i, e in enumerate(events) if e["event"] == "health.waiting" and service in e["reason"]]
        if waited and any(e["event"] == "health.ready" for e in events[waited[0]:]):
            return seen + len(events)
        assert p.worker.alive, p.worker.post_mortem()
        p.keep_ledger()
        assert time.monotonic() < deadline, f"no health.waiting ({service}) then health.ready: {events}"
        await asyncio.sleep(0.2)


async def paced_publish(s: Settings, records: list[tuple[bytes, bytes]], seconds: float) -> None:
    producer = make_producer(s)
    await producer.start()
    try:
        step = max(1, int(len(records) / (seconds * 10)))  # a slice every 100 ms
        for i in range(0, len(records), step):
            for key, value in records[i:i + step]:
                await producer.send(s.topic_transactions, value, key=key)
            await asyncio.sleep(0.1)
        await producer.flush()
    finally:
        await producer.stop()


def exact_counts(s: Settings) -> dict[str, int]:
    with psycopg.connect(s.database_url) as conn:
        row = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE holder <> 'treasury'), count(DISTINCT holder),
                      (SELECT last_seq FROM ledger_state), (SELECT count(*) FROM transactions) FROM ducats""",
        ).fetchone()
    assert row is not None
    return {"supply": row[0], "circulation": row[1], "holders": row[2], "seq": row[3], "transfers": row[4]}


async def final_snapshot(s: Settings, seq: int, p: Pipeline) -> dict[str, Any]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(s.redis_url)
    deadline = time.monotonic() + PHASE_S
    try:
        while True:
            raw = await client.get(s.redis_key("metrics", "snapshot"))
            snap = orjson.loads(raw) if raw else None
            if snap and snap["position"]["seq"] == seq and snap["position"]["complete"]:
                return snap  # type: ignore[no-any-return]
            assert p.worker.alive, p.worker.post_mortem()
            assert time.monotonic() < deadline, f"snapshot stuck at {snap and snap['position']}"
            await asyncio.sleep(0.2)
    finally:
        await client.aclose()


async def test_worker_rides_out_redis_and_postgres_restarts(
        stack: tuple[Settings, Services], tmp_path: Path) -> None:
    s, services = stack
    p = Pipeline(s, tmp_path)
    try:
        await wait_worker_ready(s, p.worker)
        pid = p.worker.pid
        w = make_workload(seed=23, batches=10, batch_size=1000, transfers=5 * PER_PHASE, clock=clock)
        await publish(s, s.topic_mints, [(b"k", x) for x in w.mints])
        await wait_caught_up(s, timeout=PHASE_S)

        restarts: list[tuple[str, Callable[[], None], str]] = [
            ("redis", lambda: services.restart("redis"), "Redis"),
            ("redis", lambda: services.kill("redis"), "Redis"),
            ("postgres", lambda: services.restart("postgres"), "PostgreSQL"),
            ("postgres", lambda: services.kill("postgres"), "PostgreSQL"),
        ]
        seen = len(health_events(p.worker.log_path))
        for i, (name, restart, says) in enumerate(restarts):
            chunk = w.transfers[i * PER_PHASE:(i + 1) * PER_PHASE]
            async with asyncio.timeout(PHASE_S * 2):
                sending = asyncio.create_task(paced_publish(s, chunk, PUBLISH_S))
                await asyncio.sleep(PUBLISH_S / 3)  # mid-phase: the worker is busy with this chunk
                old = services.pid(name)
                await asyncio.to_thread(restart)
                assert services.pid(name) != old
                await sending
                seen = await wait_waited_then_ready(p, says, seen)
            assert p.worker.alive and p.worker.pid == pid, "the worker restarted"

        await paced_publish(s, w.transfers[4 * PER_PHASE:], 1.0)
        deadline = time.monotonic() + PHASE_S
        while True:  # the ledger catches up (restarted if a PostgreSQL restart ended it)
            p.keep_ledger()
            try:
                await wait_caught_up(s, timeout=5)
                break
            except ServiceUnavailable:
                assert time.monotonic() < deadline, "the ledger never caught up"
        totals = exact_counts(s)
        snap = await final_snapshot(s, totals["seq"], p)
        assert p.worker.alive and p.worker.pid == pid
        assert snap["position"] == {**snap["position"], "seq": totals["seq"], "events": totals["seq"],
                                    "complete": True}
        for key in ("supply", "circulation", "holders", "transfers"):
            assert snap[key] == totals[key], key
        assert snap["mints"] + snap["transfers"] == totals["seq"]
        if p.ledger_starts > 1 or services.notes:
            print(f"notes: ledger started {p.ledger_starts} times; {services.notes}")
    finally:
        p.stop()


@pytest.mark.parametrize("broken, code, names", [
    ({"REDIS_URL": "redis://127.0.0.1:{port}/0"}, 75, "Redis"),
    ({"DATABASE_URL": "postgresql://ducats@127.0.0.1:{port}/ducats"}, 75, "PostgreSQL"),
    ({"KAFKA_BOOTSTRAP": "127.0.0.1:{port}"}, 75, "Kafka"),
    ({"DUCATS_TOPIC_PREFIX": "nosuchtopics"}, 1, "ducats topics"),
])
def test_a_worker_started_without_a_service_says_so_in_one_line(
        ledger_settings: Settings, tmp_path: Path, broken: dict[str, str], code: int, names: str) -> None:
    """Start-up is strict: one line and exit 75 (a service does not answer) or 1 (fix something)."""
    dead = str(free_port())  # nothing listens there
    env = ledger_settings.to_env(DUCATS_WORKER_WEB_PORT=str(free_port()), DUCATS_WORKER_METRICS_PORT="0",
                                 **{k: v.format(port=dead) for k, v in broken.items()})
    proc = subprocess.run([sys.executable, "-m", "cli", "worker"], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("ducats: error: ") and names in lines[0]
