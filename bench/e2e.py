"""``ducats bench e2e``: the whole pipeline under an open-loop load, rate by rate.

A ledger and a Faust worker run as processes on a private database and private
topics. The ducats are minted first (3.9M by default, outside the clock). Then,
for each offered rate, transfers that are all valid are published on a fixed
schedule for ``seconds`` (open loop: the schedule does not wait for the
pipeline; a slice every 10 ms, sent as producer batches so that the generator
costs little CPU), and the run records:

- the achieved rates: offered (what the generator managed), applied (the
  ledger's seq over the window) and folded (the snapshot's events);
- freshness, per transfer: from its publication to the moment the Redis
  snapshot counts its seq (the snapshot's per-partition position reached it),
  p50 and p99;
- the ledger's lag (input records not applied plus outbox rows not published)
  and the worker's (accepted events the snapshot does not count yet), sampled
  twice a second; "flat" when the lag at the end is at most one second of
  input, and growing otherwise;
- the peak RSS of each process (VmHWM, cumulative over the run);
- the same-run raw aiokafka produce -> consume latency at that rate.

A rate is sustainable when freshness p99 is at most 1 s and both lags are flat;
the highest sustainable rate is printed. After a rate the pipeline gets time to
catch up (bounded) before the next; the sweep stops after two unsustainable
rates in a row (a higher one cannot do better). With ``--profile``, py-spy
samples both processes during the last rate that ran.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from aiokafka.producer.message_accumulator import BatchBuilder
from rich.table import Table

from bench import pyspy
from bench.env import BenchEnv
from bench.freshness import close_with_worker, percentile, raw_kafka_latency
from bench.report import Status, code_version, machine, utc_now
from bench.workload import TransferChain, holder_names, holdings_of, mint_plan
from ducats.kafka import make_producer, topic_partitions
from ducats.procs import WorkerProcess
from ducats.settings import Settings
from reads.pipeline import ledger_lag, live_workers, wait_caught_up

SLICE_S = 0.01          # the generator sends a slice of the schedule every 10 ms
POLL_S = 0.005          # how often the snapshot is read
SAMPLE_S = 0.5          # how often the lags are sampled
LAGS = ("ledger", "state", "worker")  # "state", the ducat-state sink's seqs, is also in "ledger"
FRESH_P99_S = 1.0       # a sustainable rate keeps freshness p99 at or under this
RAW_LATENCY_MAX = 50_000  # records of the raw baseline per rate (it runs for up to 5 s of the rate)


@dataclass(frozen=True, slots=True, kw_only=True)
class E2EParams:
    rates: tuple[int, ...] = (1000, 2000, 5000, 10_000, 20_000, 40_000)
    seconds: float = 20.0
    ducats: int = 3_900_000
    holders: int = 3_900
    per_transfer: int = 5
    catch_up: float = 120.0  # seconds the pipeline gets to drain after a rate
    profile: bool = False
    timeout: float = 3600.0
    keep: bool = False


@dataclass(slots=True)
class Observed:
    """What the readers saw: seq of each transaction id, when each partition's seq became visible."""

    seq_of: dict[str, tuple[int, int]] = field(default_factory=dict)  # transaction id -> (partition, seq)
    visible: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    events: list[tuple[float, int]] = field(default_factory=list)  # (time, snapshot's counted events)


def watched(procs: list[WorkerProcess]) -> dict[str, int]:
    """Name -> pid of what a rate measures: the ledger, its ducat-state sink (a child, when it
    runs as a process) and the worker."""
    pids = {proc.command: proc.pid for proc in procs}
    for proc in procs:
        if proc.command == "ledger" and (kids := proc.children()):
            pids["state"] = kids[0]
    return pids


def peak_rss(pid: int) -> int:
    """VmHWM of ``pid`` in bytes: the most resident memory it has had (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def _accepted(s: Settings, out: Observed, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, isolation_level="read_committed",
                                max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20)
    await consumer.start()
    try:
        tps = await topic_partitions(s, [s.topic_accepted])
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=50, max_records=20_000)).values():
                for r in records:
                    e = orjson.loads(r.value)
                    if "transactionId" in e:
                        out.seq_of[e["transactionId"]] = (r.partition, e["seq"])
    finally:
        await consumer.stop()


async def _snapshots(s: Settings, out: Observed, stop: asyncio.Event) -> None:
    client = aioredis.Redis.from_url(s.redis_url)
    try:
        while not stop.is_set():
            raw = await client.get(s.redis_key("metrics", "snapshot"))
            now = time.time()
            if raw:
                position = orjson.loads(raw)["position"]
                for p, seq in position["partitions"].items():
                    seen = out.visible.setdefault(int(p), [])
                    if not seen or seq > seen[-1][0]:
                        seen.append((seq, now))
                if not out.events or position["events"] != out.events[-1][1]:
                    out.events.append((now, position["events"]))
            await asyncio.sleep(POLL_S)
    finally:
        await client.aclose()


async def _seqs(s: Settings) -> tuple[int, int]:
    """The last seq the ledger decided, and the last the ducat-state sink applied."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(s.database_url) as conn:
        row = await (await conn.execute("SELECT l.last_seq, p.last_seq FROM ledger_state AS l, "
                                        "ducat_state_position AS p")).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def _ledger_seq(s: Settings) -> int:
    return (await _seqs(s))[0]


async def _lags(s: Settings, out: list[dict[str, float]], stop: asyncio.Event, snapshot_events: Observed) -> None:
    """Every SAMPLE_S: the ledger's lag (ledger_lag: input, outbox and the sink's seqs), the
    part of it that is the ducat-state sink's (seqs decided, not yet applied to ``ducats``),
    and the worker's (seqs decided, not yet in the snapshot)."""
    while not stop.is_set():
        seq, applied = await _seqs(s)
        counted = snapshot_events.events[-1][1] if snapshot_events.events else 0
        out.append({"t": time.time(), "ledger": await ledger_lag(s), "state": max(0, seq - applied),
                    "worker": max(0, seq - counted), "seq": seq})
        await asyncio.sleep(SAMPLE_S)


async def open_loop(s: Settings, records: list[bytes], keys: list[bytes], rate: int) -> tuple[float, list[float]]:
    """Publish ``records`` to the transactions topic on a fixed schedule at ``rate``/s.

    Returns the seconds it took and the time each record was handed to the producer."""
    producer = make_producer(s, max_request_size=8 << 20)
    await producer.start()
    sent_at: list[float] = []
    partitions = sorted(await producer.partitions_for(s.topic_transactions))
    try:
        start, per_slice = time.monotonic(), max(1, round(rate * SLICE_S))
        wall = time.time() - start
        for i in range(0, len(records), per_slice):
            builders: dict[int, BatchBuilder] = {}
            for j in range(i, min(i + per_slice, len(records))):
                p = partitions[j % len(partitions)] if len(partitions) > 1 else partitions[0]
                b = builders.get(p) or builders.setdefault(p, producer.create_batch())
                if b.append(key=keys[j], value=records[j], timestamp=None) is None:
                    await producer.send_batch(b, s.topic_transactions, partition=p)
                    b = builders[p] = producer.create_batch()
                    b.append(key=keys[j], value=records[j], timestamp=None)
            now = time.monotonic()
            sent_at.extend([now + wall] * (min(i + per_slice, len(records)) - i))
            for p, b in builders.items():
                await producer.send_batch(b, s.topic_transactions, partition=p)
            await asyncio.sleep(max(0.0, start + (i + per_slice) / rate - time.monotonic()))
        await producer.flush()
        return time.monotonic() - start, sent_at
    finally:
        await producer.stop()


async def _settle(s: Settings) -> None:
    """VACUUM (ANALYZE) the tables the mint filled, outside the clock. Without it autovacuum
    takes up the 3.9M new ``ducats`` rows about 40 s after the mint, in the middle of
    whichever rate runs then (BENCHMARKS.md, "Issue 9's step 6")."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(s.database_url, autocommit=True) as conn:
        for table in ("ducats", "mints", "holder_balances", "ducat_census"):
            await conn.execute(f"VACUUM (ANALYZE) {table}")


def _growth(samples: list[dict[str, float]], key: str) -> float:
    """Change of the lag per second over the second half of the window."""
    if len(samples) < 4:
        return 0.0
    half = samples[len(samples) // 2:]
    dt_s = half[-1]["t"] - half[0]["t"]
    return (half[-1][key] - half[0][key]) / dt_s if dt_s > 0 else 0.0


async def run_rate(env: BenchEnv, procs: list[WorkerProcess], chain: TransferChain, rate: int, p: E2EParams,
                   status: Status, logs: Path, profile: bool, step: int = 0) -> dict[str, Any]:
    s = env.settings
    n = int(rate * p.seconds)
    stamp = utc_now()
    tag = f"r{rate}"
    # the sweep's step in the ids: a rate offered twice must not be its first run's duplicates
    moves = [chain.next(transaction_id=f"s{step}-{tag}-{i:08d}", timestamp=stamp) for i in range(n)]
    records = [m.to_transfer().to_json() for m in moves]
    keys = [m.sender.encode() for m in moves]
    seq_before = await _ledger_seq(s)
    observed, stop = Observed(), asyncio.Event()
    lags: list[dict[str, float]] = []
    readers = [asyncio.create_task(_accepted(s, observed, stop)), asyncio.create_task(_snapshots(s, observed, stop)),
               asyncio.create_task(_lags(s, lags, stop, observed))]
    spies = []
    if profile:
        spies = [(name, logs / f"{tag}-{name}.pyspy",
                  await pyspy.record(pid, seconds=p.seconds, out=logs / f"{tag}-{name}.pyspy", subprocesses=False))
                 for name, pid in watched(procs).items()]
    try:
        status.say(f"{rate:,} transfers/s offered for {p.seconds:.0f} s ({n:,} transfers)")
        took, sent_at = await open_loop(s, records, keys, rate)
        window_end = time.time()
        lag_end = lags[-1] if lags else {"ledger": 0.0, "state": 0.0, "worker": 0.0}
        seq_end = await _ledger_seq(s)
        growth = {k: _growth(lags, k) for k in LAGS}
        with status.step(f"catching up after {rate:,}/s"):
            try:
                await wait_caught_up(s, timeout=p.catch_up)
                caught_up = True
            except Exception:  # noqa: BLE001 - a pipeline that cannot drain in time is a result, not an error
                caught_up = False
            deadline = time.monotonic() + p.catch_up
            while caught_up and len(observed.seq_of) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            last = await _ledger_seq(s)
            while caught_up and (not observed.events or observed.events[-1][1] < last) \
                    and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.gather(*readers, return_exceptions=True)
    profiles = {}
    for command, out, spy in spies:
        profiles[f"{command} (e2e)"] = {**await pyspy.finish(spy, out, timeout=p.seconds + 60), "rate": rate}
    fresh = []
    for i, m in enumerate(moves):
        where = observed.seq_of.get(m.transaction_id)
        if where is None:
            continue
        partition, seq = where
        for vseq, at in observed.visible.get(partition, []):
            if vseq >= seq:
                fresh.append(at - sent_at[i])
                break
    folded = [(t, e) for t, e in observed.events if t <= window_end]
    folded_rate = (folded[-1][1] - folded[0][1]) / (folded[-1][0] - folded[0][0]) if len(folded) > 1 and \
        folded[-1][0] > folded[0][0] else 0.0
    raw = await raw_kafka_latency(env, min(RAW_LATENCY_MAX, rate * 5), rate)
    flat = {k: lag_end[k] <= rate for k in LAGS}  # at most a second behind at the end
    p99 = percentile(fresh, 0.99)
    return {
        "rate": rate, "transfers": n, "offered_per_s": round(n / took, 1),
        "applied_per_s": round((seq_end - seq_before) / p.seconds, 1), "folded_per_s": round(folded_rate, 1),
        "moves_per_s": round((seq_end - seq_before) / p.seconds * p.per_transfer, 1),
        "freshness_ms": {"p50": round(percentile(fresh, 0.5) * 1000, 1), "p99": round(p99 * 1000, 1)},
        "seen": len(fresh), "never_seen": n - len(fresh),
        "lag_end": {k: int(lag_end[k]) for k in LAGS},
        "lag_growth_per_s": {k: round(v, 1) for k, v in growth.items()},
        "lag_flat": flat, "caught_up_after": caught_up,
        "peak_rss_bytes": {name: peak_rss(pid) for name, pid in watched(procs).items()},
        "raw_kafka_ms": {"p50": round(percentile(raw, 0.5) * 1000, 2), "p99": round(percentile(raw, 0.99) * 1000, 2)},
        "p99_ratio_to_raw": round(p99 / percentile(raw, 0.99), 1) if raw else None,
        "sustainable": bool(fresh) and len(fresh) == n and p99 <= FRESH_P99_S and all(flat.values()),
        **({"profiles": profiles} if profiles else {}),
    }


async def run_e2e(base: Settings, p: E2EParams, status: Status, logs: Path) -> dict[str, Any]:
    env = await BenchEnv.create(base, keep=p.keep)
    s = env.settings
    procs = [WorkerProcess(env=env.ledger_env(), command="ledger", log_path=logs / "ledger.log"),
             WorkerProcess(env=env.ledger_env(), command="worker", log_path=logs / "worker.log")]
    results: list[dict[str, Any]] = []
    try:
        for proc in procs:
            proc.start()
        while not await live_workers(s):
            assert all(proc.alive for proc in procs), "a process exited while starting"
            await asyncio.sleep(0.2)
        per_holder = p.ducats // p.holders
        mints = mint_plan(holders=holder_names(p.holders), per_holder=per_holder, timestamp=utc_now())
        with status.step(f"minting {per_holder * p.holders:,} ducats"):
            producer = make_producer(s, max_request_size=8 << 20)
            await producer.start()
            try:
                for m in mints:
                    await producer.send(s.topic_mints, m.to_json(), key=m.holder.encode())
                await producer.flush()
            finally:
                await producer.stop()
            await wait_caught_up(s, timeout=p.timeout)
        with status.step("vacuuming after the mint"):
            await _settle(s)
        chain = TransferChain(holdings=holdings_of(mints), ducats_per_transfer=p.per_transfer, seed=29)
        failures = 0
        for i, rate in enumerate(p.rates):
            last = i == len(p.rates) - 1 or failures == 1
            result = await run_rate(env, procs, chain, rate, p, status, logs, profile=p.profile and last, step=i)
            results.append(result)
            status.say(f"{rate:,}/s: p99 {result['freshness_ms']['p99']} ms, applied {result['applied_per_s']:,}/s, "
                       f"{'sustainable' if result['sustainable'] else 'NOT sustainable'}")
            failures = 0 if result["sustainable"] else failures + 1
            assert all(proc.alive for proc in procs), "a pipeline process exited"
            if failures == 2 or not result["caught_up_after"]:
                break
    finally:
        for proc in procs:
            proc.stop()
        await close_with_worker(env)
    best = max((r["rate"] for r in results if r["sustainable"]), default=0)
    return {"benchmark": "e2e", "date": utc_now(), "machine": machine(), "code": code_version(),
            "topic_prefix": s.topic_prefix,
            "params": {"rates": list(p.rates), "seconds": p.seconds, "ducats": per_holder * p.holders,
                       "holders": p.holders, "ducats_per_transfer": p.per_transfer},
            "rates": results, "highest_sustainable_rate": best,
            "highest_sustainable_moves": best * p.per_transfer}


def plot(result: dict[str, Any], path: Path) -> Path:
    """A PNG of offered rate against freshness p50 and p99 (log scales), the 1 s budget
    and the highest sustainable rate marked: what BENCHMARKS.md shows."""
    import matplotlib
    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    rates = [r["rate"] for r in result["rates"]]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for key, style in (("p50", "o-"), ("p99", "s-")):
        ax.plot(rates, [max(r["freshness_ms"][key], 0.1) for r in result["rates"]], style, label=f"freshness {key}")
    ax.plot(rates, [max(r["raw_kafka_ms"]["p99"], 0.1) for r in result["rates"]], "^:", label="raw Kafka p99")
    ax.axhline(FRESH_P99_S * 1000, color="grey", linestyle="--", linewidth=1, label="budget: p99 1 s")
    if result["highest_sustainable_rate"]:
        ax.axvline(result["highest_sustainable_rate"], color="green", linewidth=1, label="highest sustainable")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered transfers/s")
    ax.set_ylabel("ms, event -> visible in the snapshot")
    params, code = result["params"], result["code"]
    commit = str(code.get("git_commit", "?"))[:7] if isinstance(code, dict) else str(code)
    ax.set_title(f"bench e2e, {params['ducats']:,} ducats, {params['ducats_per_transfer']} per transfer, "
                 f"{result['machine'].get('nproc', '?')} cores, commit {commit}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def e2e_table(result: dict[str, Any]) -> Table:
    t = Table(title=f"bench e2e: {result['params']['ducats']:,} ducats, {result['params']['ducats_per_transfer']} "
                    f"per transfer, {result['params']['seconds']:.0f} s per rate")
    for col in ("offered/s", "sent/s", "applied/s", "folded/s", "fresh p50 ms", "fresh p99 ms",
                "raw p99 ms", "ratio", "ledger lag", "of it the sink's", "worker lag", "RSS ledger / state / worker MB",
                "ok"):
        t.add_column(col, justify="right")
    for r in result["rates"]:
        rss = r["peak_rss_bytes"]
        t.add_row(f"{r['rate']:,}", f"{r['offered_per_s']:,.0f}", f"{r['applied_per_s']:,.0f}",
                  f"{r['folded_per_s']:,.0f}", f"{r['freshness_ms']['p50']:,.0f}", f"{r['freshness_ms']['p99']:,.0f}",
                  f"{r['raw_kafka_ms']['p99']:.1f}", f"{r['p99_ratio_to_raw']}x",
                  f"{r['lag_end']['ledger']:,}{'' if r['lag_flat']['ledger'] else ' ↑'}",
                  f"{r['lag_end']['state']:,}{'' if r['lag_flat']['state'] else ' ↑'}",
                  f"{r['lag_end']['worker']:,}{'' if r['lag_flat']['worker'] else ' ↑'}",
                  " / ".join(f"{rss.get(k, 0) / 2**20:,.0f}" for k in ("ledger", "state", "worker")),
                  "yes" if r["sustainable"] else "no")
    t.caption = (f"highest sustainable rate: {result['highest_sustainable_rate']:,} transfers/s "
                 f"({result['highest_sustainable_moves']:,} moves/s): freshness p99 <= 1 s, lags flat")
    return t
