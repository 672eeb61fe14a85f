"""The ledger under test: a real ``ducats ledger`` subprocess, and how to tell
when it has applied everything.

"Applied everything" is what tests/fixtures/ledger.py's ``wait_caught_up``
checks: the next offset the ledger stored with its data has reached the end
offset of every input partition, and the outbox is empty (every output record
is in Kafka). The poll uses one connection and a 50 ms period, so it costs the
database next to nothing and adds at most 50 ms to a measurement.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg

from bench.deadline import Deadline
from bench.env import BenchEnv
from bench.errors import BenchError
from bench.report import Status
from ducats.kafka import end_offsets
from ducats.procs import WorkerProcess
from ducats.settings import Settings
from ducats.upstream import Outgoing, publish

Offsets = dict[tuple[str, int], int]
POLL_S = 0.05


class LedgerProcess(WorkerProcess):
    """``ducats ledger`` with a JSON log; with ``probe_dir``, ``python -m bench.probe``
    instead: the same worker with per-step timers (and cProfile when asked)."""

    def __init__(self, env: BenchEnv, *, log_path: Path, probe_dir: Path | None = None,
                 cprofile: bool = False) -> None:
        super().__init__(env=env.ledger_env(), log_path=log_path, command="ledger")
        self.probe_dir, self.cprofile = probe_dir, cprofile

    def start(self) -> LedgerProcess:
        if self.probe_dir is None:
            super().start()
            return self
        argv = [sys.executable, "-m", "bench.probe", "--out", str(self.probe_dir / "timings.json")]
        if self.cprofile:
            argv += ["--cprofile", str(self.probe_dir / "ledger.prof")]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, env={**os.environ, **self.env}, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def tail(self, lines: int = 15) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def batches(self, *, where: str) -> list[dict[str, Any]]:
        """The ``ledger.batch`` log records whose count ``where`` (``mints``, ``accepted``)
        is positive: the batches of one phase. Read it after stop(): the worker logs
        a batch after its commit, so a running worker may not have logged the last one."""
        return [r for r in self.records("ledger.batch") if r.get(where, 0) > 0]

    def records(self, event: str) -> list[dict[str, Any]]:
        """The log records of one ``event`` (``ledger.batch``, ``state.batch``), in order."""
        if not self.log_path.exists():
            return []
        with self.log_path.open("rb") as f:
            out = []
            for line in f:
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and rec.get("event") == event:
                    out.append(rec)
            return out


async def applied_offsets(conn: psycopg.AsyncConnection[Any]) -> Offsets:
    cur = await conn.execute("SELECT topic, partition, next_offset FROM ledger_offsets")
    return {(r[0], r[1]): r[2] for r in await cur.fetchall()}


def _check_alive(ledger: LedgerProcess, deadline: Deadline, what: str) -> None:
    """BenchError if the ledger has exited, BenchTimeout past the deadline."""
    if not ledger.alive:
        raise BenchError(f"the ledger exited (code {ledger.proc and ledger.proc.returncode}); "
                         f"its log ends:\n{ledger.tail()}")
    deadline.check(what)


async def wait_applied(conn: psycopg.AsyncConnection[Any], ends: Offsets, *, ledger: LedgerProcess,
                       deadline: Deadline, on_applied: Callable[[int], None] | None = None) -> float:
    """Poll until the ledger has applied every record below ``ends`` and emptied its
    outbox; return the ``time.perf_counter()`` at which that was first seen.

    ``on_applied(n)`` gets the records applied so far (summed over partitions, capped
    at ``ends``). Raises :class:`BenchError` if the ledger dies, and BenchTimeout."""
    wanted = {k: v for k, v in ends.items() if v}
    while True:
        done = await applied_offsets(conn)
        if on_applied is not None:
            on_applied(sum(min(done.get(k, 0), v) for k, v in wanted.items()))
        if all(done.get(k, 0) >= v for k, v in wanted.items()):
            cur = await conn.execute("SELECT NOT EXISTS (SELECT 1 FROM outbox)")
            if (await cur.fetchone()) == (True,):
                return time.perf_counter()  # an upper bound: at most one poll period late
        _check_alive(ledger, deadline, "waiting for the ledger to apply every record")
        await asyncio.sleep(POLL_S)


async def connect(settings: Settings) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True, connect_timeout=15)


@dataclass(frozen=True, slots=True)
class Applied:
    """Seconds from the first publish until the ledger had applied every record and
    emptied its outbox (``log_s``), and until the ducat-state sink had applied the
    ledger's last seq too (``state_s``, at least ``log_s``)."""
    log_s: float
    state_s: float


async def wait_state(conn: psycopg.AsyncConnection[Any], *, ledger: LedgerProcess, deadline: Deadline) -> float:
    """Poll until the ducat-state sink's position has reached the ledger's last seq;
    return the ``time.perf_counter()`` at which that was first seen."""
    while True:
        cur = await conn.execute("SELECT s.last_seq >= l.last_seq FROM ledger_state AS l, ducat_state_position AS s")
        if (await cur.fetchone()) == (True,):
            return time.perf_counter()
        _check_alive(ledger, deadline, "waiting for the ducat-state sink to apply the ledger's log")
        await asyncio.sleep(POLL_S)


async def publish_and_apply(env: BenchEnv, ledger: LedgerProcess, conn: psycopg.AsyncConnection[Any], *,
                            topic: str, messages: Sequence[tuple[bytes, bytes]], deadline: Deadline,
                            status: Status, what: str) -> Applied:
    """The timed phase: from the first publish until the ledger has applied every record,
    and until the ducats' rows show them."""
    before = sum((await applied_offsets(conn)).values())
    with status.step(f"publishing {len(messages):,} {what}", total=len(messages)) as update:
        sent = 0

        def advance(n: int) -> None:
            nonlocal sent
            sent += n
            update(sent)

        started = time.perf_counter()
        await publish(env.settings, topic, (Outgoing(key=k, value=v) for k, v in messages), on_sent=advance)
    ends = await end_offsets(env.settings, [env.settings.topic_mints, env.settings.topic_transactions])
    with status.step(f"ledger applying {len(messages):,} {what}", total=len(messages)) as update:
        finished = await wait_applied(conn, ends, ledger=ledger, deadline=deadline,
                                      on_applied=lambda n: update(n - before))
    with status.step(f"ducat-state sink applying the {what}"):
        stated = await wait_state(conn, ledger=ledger, deadline=deadline)
    return Applied(log_s=finished - started, state_s=stated - started)


async def warm_up(env: BenchEnv, ledger: LedgerProcess, conn: psycopg.AsyncConnection[Any], *,
                  deadline: Deadline) -> None:
    """Wait until the ledger is consuming: it must dead-letter one not-JSON record.

    So the clock never counts the worker's start-up (imports, connections, the
    outbox tail scan). The dead letter goes to the private dlq topic."""
    await publish(env.settings, env.settings.topic_mints, [Outgoing(key=b"warm-up", value=b"warm-up, not JSON")])
    ends = await end_offsets(env.settings, [env.settings.topic_mints, env.settings.topic_transactions])
    await wait_applied(conn, ends, ledger=ledger, deadline=deadline)


def state_summary(batches: Sequence[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """What the ducat-state sink's log says about a phase: its ranges, its busy share, and
    the seconds per step (read the log, load the ducats, the rules, the writes)."""
    steps: dict[str, float] = {}
    for b in batches:
        for name, ms in (b.get("steps") or {}).items():
            steps[name] = steps.get(name, 0.0) + float(ms) / 1000
    busy = sum(float(b.get("ms", 0)) for b in batches) / 1000
    return {"ranges": len(batches), "moves": sum(int(b.get("moves", 0)) for b in batches),
            "busy_s": round(busy, 3), "busy_share": round(busy / seconds, 3) if seconds else 0,
            "steps_s": {k: round(v, 3) for k, v in sorted(steps.items(), key=lambda kv: -kv[1])}}


def batch_summary(batches: Sequence[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """What the ledger's own log says about a phase: how many batches, how big,
    and how much of the wall time it spent inside them (write, publish, commit)."""
    ms = sorted(float(b.get("ms", 0)) for b in batches)
    records = [int(b.get("records", 0)) for b in batches]
    busy = sum(ms) / 1000
    return {"batches": len(batches), "records": sum(records),
            "records_per_batch": round(sum(records) / len(batches), 1) if batches else 0,
            "busy_s": round(busy, 3), "busy_share": round(busy / seconds, 3) if seconds else 0,
            "batch_ms_p50": ms[len(ms) // 2] if ms else 0, "batch_ms_max": ms[-1] if ms else 0}
