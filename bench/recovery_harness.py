"""The harness of ``ducats bench recovery`` (bench/recovery.py): processes whose
JSON logs are read as they grow, a bounded poll, the probes the scenarios read
(the Redis snapshot, the workers' heartbeat keys, the ledger's position), and a
steady load of valid transfers."""
from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import psycopg
import redis.asyncio as aioredis

from bench.env import BenchEnv
from bench.errors import BenchError
from bench.workload import TransferChain
from ducats.kafka import make_producer
from ducats.procs import WorkerProcess
from ducats.settings import Settings

POLL_S = 0.02
WAIT_S = 90.0  # bound of one wait; a process that needs longer has failed the benchmark


class Proc(WorkerProcess):
    """A ledger or worker process whose JSON log can be searched by event (read as it grows)."""

    def __init__(self, *, env: dict[str, str], log_path: Path, command: str) -> None:
        super().__init__(env=env, log_path=log_path, command=command)
        self.read_to = 0
        self.seen: dict[str, list[dict[str, Any]]] = {}

    def records(self, event: str, since: float = 0.0) -> list[dict[str, Any]]:
        """The log records named ``event`` stamped at or after ``since`` (epoch seconds)."""
        if self.log_path.exists():
            with self.log_path.open("rb") as f:
                f.seek(self.read_to)
                chunk = f.read()
            complete = chunk[:chunk.rfind(b"\n") + 1]
            self.read_to += len(complete)
            for line in complete.splitlines():
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and "timestamp" in rec:
                    rec["at"] = dt.datetime.fromisoformat(rec["timestamp"]).timestamp()
                    self.seen.setdefault(str(rec.get("event")), []).append(rec)
        return [r for r in self.seen.get(event, []) if r["at"] >= since]


async def until(what: str, check: Callable[[], Awaitable[float | None]], procs: list[Proc]) -> float:
    """Poll ``check`` until it returns a time (epoch seconds); fail if a process died or WAIT_S passed."""
    deadline = time.monotonic() + WAIT_S
    while (at := await check()) is None:
        dead = [p for p in procs if not p.alive]
        if dead:
            raise BenchError(f"{dead[0].command} exited while waiting for {what}; see {dead[0].log_path}")
        if time.monotonic() > deadline:
            raise BenchError(f"no {what} within {WAIT_S:.0f} s")
        await asyncio.sleep(POLL_S)
    return at


class Run:
    """One private pipeline under a steady load, and the probes the scenarios read."""

    def __init__(self, env: BenchEnv, logs: Path, rate: int) -> None:
        self.env, self.s, self.logs, self.rate = env, env.settings, logs, rate
        self.redis = aioredis.Redis.from_url(self.s.redis_url)
        self.procs: list[Proc] = []
        self.count = 0
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.lag_at_kill: list[int] = []  # accepted records the snapshot had not counted yet, per worker kill

    def start(self, command: str, **extra: str) -> Proc:
        self.count += 1
        env = {**self.env.ledger_env(), **extra}
        proc = Proc(env=env, command=command,
                    log_path=self.logs / f"{self.count:02d}-{command}.log")
        self.procs.append(proc)
        proc.start()
        return proc

    async def snapshot(self) -> dict[str, Any]:
        raw = await self.redis.get(self.s.redis_key("metrics", "snapshot"))
        return orjson.loads(raw) if raw else {"position": {"seq": 0, "partitions": {}}}  # type: ignore[no-any-return]

    async def owned(self, worker: Proc) -> set[int] | None:
        raw = await self.redis.get(self.s.redis_key("workers", f"{socket.gethostname()}:{worker.pid}"))
        return None if raw is None else set(orjson.loads(raw)["partitions"])

    async def ledger_seq(self) -> int:
        """The ledger's position: the last seq it committed."""
        if self.conn is None:
            self.conn = await psycopg.AsyncConnection.connect(self.s.database_url, connect_timeout=5,
                                                              autocommit=True)
        row = await (await self.conn.execute("SELECT last_seq FROM ledger_state")).fetchone()
        return int(row[0]) if row else 0

    async def snapshot_beyond(self, seq: int) -> float | None:
        return time.time() if (await self.snapshot())["position"]["seq"] > seq else None

    async def ready(self, *workers: Proc) -> None:
        """Until every worker's heartbeat is there and, together, they own every partition."""
        async def check() -> float | None:
            owned = [await self.owned(w) for w in workers]
            if any(o is None for o in owned):
                return None
            every = set().union(*[o for o in owned if o is not None])
            return time.time() if every == set(range(self.s.topic_partitions)) and all(owned) else None

        async def caught_up() -> float | None:
            behind = await self.ledger_seq() - (await self.snapshot())["position"]["seq"]
            return time.time() if behind <= max(10, self.rate // 4) else None  # a quarter second of load

        await until("workers ready with every partition", check, list(workers))
        # Each scenario starts from a steady state, not with the backlog of the one before.
        await until("the workers catching up", caught_up, list(workers))

    async def close(self) -> None:
        for proc in self.procs:
            proc.kill()
        await self.redis.aclose()
        if self.conn is not None:
            await self.conn.close()


def first_batch(worker: Proc, since: float) -> Callable[[], Awaitable[float | None]]:
    """The first ``metrics.batch`` of ``worker``: it processes records again (replayed ones too)."""
    async def check() -> float | None:
        done = [r["at"] for r in worker.records("metrics.batch", since)]
        return done[0] if done else None
    return check


def first_ledger(ledger: Proc, event: str, since: float) -> Callable[[], Awaitable[float | None]]:
    async def check() -> float | None:
        recs = [r["at"] for r in ledger.records(event, since) if event != "ledger.batch" or r.get("records", 0)]
        return recs[0] if recs else None
    return check


async def steady_load(s: Settings, chain: TransferChain, rate: int, stop: asyncio.Event) -> int:
    """Publish valid transfers at ``rate`` per second until ``stop``; return how many."""
    producer = make_producer(s)
    await producer.start()
    sent, started = 0, time.monotonic()
    try:
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate)
            stamp = dt.datetime.now(dt.UTC).isoformat()
            for _ in range(due - sent):
                move = chain.next(transaction_id=f"r-{sent:09d}", timestamp=stamp)
                await producer.send(s.topic_transactions, move.to_transfer().to_json(), key=move.sender.encode())
                sent += 1
            await asyncio.sleep(0.01)
        await producer.flush()
    finally:
        await producer.stop()
    return sent
