"""``ducats bench recovery``: how fast the pipeline is back after a process dies.

A ledger and Faust workers run as processes on a private database and private
topics, on loopback, while valid transfers flow in at a steady rate. Each
scenario kills a process with SIGKILL, as a crash would, starts what a
supervisor would start, and times (wall clock, from the kill) what the
pipeline's own signals show:

- **worker restart**: the only worker is killed and started again at once, on
  the same web port, with dynamic group membership and with static membership
  (the default, DUCATS_WORKER_STATIC_MEMBERSHIP): until the restarted worker's
  first ``metrics.batch`` log record with fresh events, and until the Redis
  snapshot counts a record the ledger accepted after the kill. Baseline: a
  worker started after a clean stop with dynamic membership (it left the group),
  from its start to its first batch.
- **replica takeover**: one of two workers (default settings) is killed: until
  the survivor's heartbeat key lists every partition, and until every partition
  the dead one owned moves again in the snapshot. Baseline: the same after a
  clean stop with dynamic membership, where the leaving worker tells the group.
- **ledger standby**: the leading ledger is killed while a standby waits on the
  leader lock (it logged ``ledger.standby``): until the standby logs
  ``ledger.leader`` (it holds the lock, its outbox publisher has fenced the dead
  one and scanned the output tails, its consumer is positioned) and its first
  ``ledger.batch`` (a batch applied and published). Baseline: the leader killed
  with no standby and started again at once.

Each figure is measured ``reps`` times; the table shows the median and the
maximum. A baseline's ratio is the figure's median over the baseline's.
"""
from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

from bench.env import BenchEnv
from bench.errors import BenchError
from bench.freshness import close_with_worker
from bench.recovery_harness import WAIT_S, Proc, Run, first_batch, first_ledger, steady_load, until
from bench.report import Status, code_version, machine, utc_now
from bench.workload import TransferChain, holder_names, holdings_of, mint_plan
from ducats.kafka import make_producer
from ducats.procs import free_port
from ducats.settings import Settings
from reads.pipeline import wait_caught_up



@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryParams:
    reps: int = 3
    rate: int = 200  # transfers per second, all valid, for the whole run
    holders: int = 100
    per_holder: int = 100
    timeout: float = 900.0
    keep: bool = False


@dataclass(kw_only=True)
class Latency:
    key: str
    label: str
    versus: str | None = None
    samples: list[float] = field(default_factory=list)

    def to_json(self, by_key: dict[str, Latency]) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "unit": "s", "samples": [round(x, 3) for x in self.samples],
                               "median_s": round(statistics.median(self.samples), 3) if self.samples else None,
                               "max_s": round(max(self.samples), 3) if self.samples else None}
        base = by_key.get(self.versus or "")
        if base is not None and base.samples and self.samples:
            out["versus"] = self.versus
            out["ratio"] = round(statistics.median(self.samples) / statistics.median(base.samples), 2)
        return out


FIGURES = [
    Latency(key="worker_start_batch", label="worker started after a clean stop -> its first batch (baseline)"),
    Latency(key="worker_restart_batch", label="dynamic member kill -9, restarted -> its first batch",
            versus="worker_start_batch"),
    Latency(key="worker_restart_moving", label="dynamic member kill -9, restarted -> snapshot moves again"),
    Latency(key="worker_restart_snapshot",
            label="dynamic member kill -9, restarted -> snapshot counts a record accepted after the kill"),
    Latency(key="worker_static_restart_batch", label="static member kill -9, restarted -> its first batch",
            versus="worker_start_batch"),
    Latency(key="worker_static_restart_moving", label="static member kill -9, restarted -> snapshot moves again"),
    Latency(key="worker_static_restart_snapshot",
            label="static member kill -9, restarted -> snapshot counts a record accepted after the kill"),
    Latency(key="takeover_stop_partitions",
            label="one of two workers stopped cleanly -> survivor owns every partition (baseline)"),
    Latency(key="takeover_partitions", label="one of two workers kill -9 -> survivor owns every partition",
            versus="takeover_stop_partitions"),
    Latency(key="takeover_snapshot", label="one of two workers kill -9 -> its partitions move in the snapshot"),
    Latency(key="ledger_restart_batch",
            label="ledger kill -9, no standby, restarted -> first batch (baseline)"),
    Latency(key="standby_leader",
            label="ledger kill -9 -> standby leads (lock, publisher fenced and tail scanned, consumer seeked)"),
    Latency(key="standby_batch", label="ledger kill -9 -> standby's first batch applied and published",
            versus="ledger_restart_batch"),
]


DYNAMIC = {"DUCATS_WORKER_STATIC_MEMBERSHIP": "false"}


async def worker_restarts(run: Run, figures: dict[str, Latency], reps: int) -> None:
    """Baseline (clean stop, start), then kill -9 and restart, dynamic then static membership.
    The replica keeps its web port across restarts, as a supervisor would restart it."""
    port = str(free_port())
    worker = run.start("worker", DUCATS_WORKER_WEB_PORT=port, **DYNAMIC)
    await run.ready(worker)
    for _ in range(reps):
        await asyncio.to_thread(worker.stop)
        started = time.time()
        worker = run.start("worker", DUCATS_WORKER_WEB_PORT=port, **DYNAMIC)
        figures["worker_start_batch"].samples.append(await until("a first batch", first_batch(worker, started),
                                                                 [worker]) - started)
        await run.ready(worker)
    for static in (False, True):
        mode = {} if static else DYNAMIC  # static membership is the default
        if static:
            await asyncio.to_thread(worker.stop)
            worker = run.start("worker", DUCATS_WORKER_WEB_PORT=port)
            await run.ready(worker)
        prefix = "worker_static_restart" if static else "worker_restart"
        for _ in range(reps):
            worker.kill()
            killed = time.time()
            accepted, counted = await run.ledger_seq(), (await run.snapshot())["position"]["seq"]
            run.lag_at_kill.append(accepted - counted)
            worker = run.start("worker", DUCATS_WORKER_WEB_PORT=port, **mode)
            figures[f"{prefix}_batch"].samples.append(
                await until("the restarted worker's first batch", first_batch(worker, killed), [worker]) - killed)
            figures[f"{prefix}_moving"].samples.append(
                await until("the snapshot moving", lambda: run.snapshot_beyond(counted), [worker]) - killed)
            figures[f"{prefix}_snapshot"].samples.append(
                await until("a newer record in the snapshot", lambda: run.snapshot_beyond(accepted), [worker])
                - killed)
            await run.ready(worker)
    await asyncio.to_thread(worker.stop)


async def takeovers(run: Run, figures: dict[str, Latency], reps: int) -> None:
    """Two replicas; one leaves cleanly with dynamic membership (baseline: it says so), or
    dies by kill -9 with the default settings; the survivor takes over its partitions."""
    ports = [str(free_port()), str(free_port())]
    every = set(range(run.s.topic_partitions))
    for clean in (True, False):
        mode = DYNAMIC if clean else {}
        survivor, other = (run.start("worker", DUCATS_WORKER_WEB_PORT=p, **mode) for p in ports)
        await run.ready(survivor, other)
        for _ in range(reps):
            mine = await run.owned(other) or set()
            before = (await run.snapshot())["position"]["partitions"]
            if clean:
                gone = time.time()
                await asyncio.to_thread(other.stop)
            else:
                other.kill()
                gone = time.time()

            async def owns_all() -> float | None:
                return time.time() if await run.owned(survivor) == every else None

            async def moved() -> float | None:
                now = (await run.snapshot())["position"]["partitions"]
                return time.time() if all(now.get(str(p), 0) > before.get(str(p), 0) for p in mine) else None

            took = await until("the survivor owning every partition", owns_all, [survivor]) - gone
            figures["takeover_stop_partitions" if clean else "takeover_partitions"].samples.append(took)
            if not clean:
                figures["takeover_snapshot"].samples.append(
                    await until("the dead worker's partitions moving", moved, [survivor]) - gone)
            other = run.start("worker", DUCATS_WORKER_WEB_PORT=ports[1], **mode)
            await run.ready(survivor, other)
        for w in (survivor, other):
            await asyncio.to_thread(w.stop)


async def standbys(run: Run, leader: Proc, figures: dict[str, Latency], reps: int) -> None:
    """The leader killed: restarted alone (baseline), then taken over by a waiting standby."""
    for with_standby in [False] * reps + [True] * reps:
        standby = run.start("ledger") if with_standby else None
        if standby is not None:  # it has started and waits on the leader lock
            await until("the standby standing by", first_ledger(standby, "ledger.standby", 0.0), [standby])
            if standby.records("ledger.leader"):
                raise BenchError("the standby took the lead while the leader was alive")
        await until("the leader applying", first_ledger(leader, "ledger.batch", time.time()), [leader])
        leader.kill()
        killed = time.time()
        if standby is None:
            leader = run.start("ledger")
            figures["ledger_restart_batch"].samples.append(
                await until("a first batch", first_ledger(leader, "ledger.batch", killed), [leader]) - killed)
            continue
        figures["standby_leader"].samples.append(
            await until("the standby taking the lock", first_ledger(standby, "ledger.leader", killed), [standby])
            - killed)
        figures["standby_batch"].samples.append(
            await until("the standby's first batch", first_ledger(standby, "ledger.batch", killed), [standby])
            - killed)
        leader = standby


async def run_recovery(base: Settings, p: RecoveryParams, status: Status,
                       logs: Path) -> tuple[dict[str, Any], list[Latency]]:
    if p.reps < 1:
        raise BenchError(f"--reps must be at least 1, got {p.reps}")
    figures = {f.key: Latency(key=f.key, label=f.label, versus=f.versus) for f in FIGURES}
    env = await BenchEnv.create(base, keep=p.keep)
    logs = logs / env.settings.topic_prefix  # this run's own logs
    logs.mkdir(parents=True, exist_ok=True)
    run = Run(env, logs, p.rate)
    stop, load = asyncio.Event(), None
    try:
        leader = run.start("ledger")
        mints = mint_plan(holders=holder_names(p.holders), per_holder=p.per_holder, timestamp=utc_now())
        producer = make_producer(env.settings)
        await producer.start()
        for m in mints:
            await producer.send(env.settings.topic_mints, m.to_json(), key=m.holder.encode())
        await producer.stop()
        await wait_caught_up(env.settings, timeout=WAIT_S)
        chain = TransferChain(holdings=holdings_of(mints), ducats_per_transfer=3, seed=7)
        load = asyncio.create_task(steady_load(env.settings, chain, p.rate, stop))
        with status.step(f"worker restarts ({p.reps} of each)"):
            await worker_restarts(run, figures, p.reps)
        with status.step(f"replica takeovers ({p.reps} of each)"):
            await takeovers(run, figures, p.reps)
        with status.step(f"ledger standby takeovers ({p.reps} of each)"):
            await standbys(run, leader, figures, p.reps)
        stop.set()
        sent = await load
    finally:
        stop.set()
        if load is not None and not load.done():
            load.cancel()
        await run.close()
        await close_with_worker(env)
    s = env.settings
    result = {"benchmark": "recovery", "date": utc_now(), "params": asdict(p), "machine": machine(),
              "code": code_version(), "database": env.database, "topic_prefix": s.topic_prefix,
              "transfers_published": sent, "logs": str(logs),
              "lag_at_kill": run.lag_at_kill,
              "settings": {"worker_session_timeout": s.worker_session_timeout,
                           "worker_static_membership": s.worker_static_membership,
                           "topic_partitions": s.topic_partitions}}
    return result, list(figures.values())


def recovery_table(result: dict[str, Any], figures: list[Latency]) -> Table:
    by_key = {f.key: f for f in figures}
    t = Table(title=f"bench recovery: {result['params']['reps']} repetitions, "
                    f"{result['params']['rate']} transfers/s", title_justify="left")
    for col, justify in (("figure", "left"), ("median s", "right"), ("max s", "right"),
                         ("samples s", "left"), ("÷ baseline", "right")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for f in figures:
        j = f.to_json(by_key)
        t.add_row(f.label, f"{j['median_s']:.2f}", f"{j['max_s']:.2f}", " ".join(f"{x:.2f}" for x in f.samples),
                  f"{j['ratio']:.2f}" if "ratio" in j else "")
    return t


def recovery_json(result: dict[str, Any], figures: list[Latency]) -> str:
    by_key = {f.key: f for f in figures}
    return orjson.dumps({**result, "figures": {f.key: f.to_json(by_key) for f in figures}}).decode()
