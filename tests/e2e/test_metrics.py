"""Streaming metrics end to end: ledger -> accepted log -> Faust workers ->
Redis snapshot, checked against PostgreSQL and a reference computation over
the accepted log."""
from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psycopg
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ducats.domain.metrics import KEEP, WINDOWS
from ducats.domain.network import Edge, edge_key, fold_edges
from ducats.kafka import end_offsets
from ducats.procs import WorkerProcess, post_mortems
from ducats.settings import Settings
from tests.fixtures.ledger import publish, read_all, wait_caught_up, wait_hot_seq, wait_worker_ready
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
        assert all(p.alive for p in procs), "a worker died:\n" + post_mortems(procs)
        assert time.monotonic() < deadline, f"snapshot stuck at {snap and snap['position']}"
        await asyncio.sleep(0.2)


async def reference_log(s: Settings) -> tuple[dict[str, dict[str, int]], int]:
    """Moves per tumbling event-time window, straight from the accepted log, and
    the watermark: the latest event time of any accepted event (mints too)."""
    out: dict[str, dict[str, int]] = {name: defaultdict(int) for name in WINDOWS}
    watermark = 0
    for rec in await read_all(s, s.topic_accepted):
        e = orjson.loads(rec.value)
        t = int(dt.datetime.fromisoformat(e["timestamp"]).timestamp())
        watermark = max(watermark, t)
        if "transactionId" in e:
            for name, width in WINDOWS.items():
                out[name][str(t // width * width)] += e["ducatCount"]
    return {k: dict(v) for k, v in out.items()}, watermark


async def check_edges(s: Settings, snap: dict[str, Any]) -> None:
    """PostgreSQL's edges are the accepted log's, folded by the rule once (whatever the
    crashes and replays on the way), and the snapshot counts each of them once."""
    reference: dict[str, Edge] = {}
    fold_edges(reference, [orjson.loads(rec.value) for rec in await read_all(s, s.topic_accepted)])
    with psycopg.connect(s.database_url) as conn:
        stored = {edge_key(a, b): (w, n, f, last) for a, b, w, n, f, last in conn.execute(
            "SELECT sender, receiver, weight, transfers, first_seq, last_seq FROM edges")}
    assert stored == {k: (e.weight, e.transfers, e.first_seq, e.last_seq) for k, e in reference.items()}
    assert snap["network"]["edges"] == len(reference) > 0


async def reference_windows(s: Settings) -> dict[str, dict[str, int]]:
    return (await reference_log(s))[0]


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


async def check(s: Settings, snap: dict[str, Any], totals: dict[str, int]) -> None:
    """The snapshot's totals equal PostgreSQL's; its velocity windows equal the
    accepted log's: per size, the window holding the watermark and the one
    before, their moves over the circulation counted in PostgreSQL."""
    assert snap["position"]["seq"] == totals["seq"] == snap["position"]["events"]
    assert snap["supply"] == totals["supply"]
    assert snap["circulation"] == totals["circulation"]
    assert snap["holders"] == totals["holders"]
    windows, watermark = await reference_log(s)
    assert dt.datetime.fromisoformat(snap["watermark"]).timestamp() == watermark
    for name, width in WINDOWS.items():
        current = watermark // width * width
        moves, previous = windows[name].get(str(current), 0), windows[name].get(str(current - width), 0)
        v = snap["velocity"][name]
        assert (v["windowStart"], v["previousWindowStart"]) == (iso(current), iso(current - width)), name
        assert (v["moves"], v["previousMoves"]) == (moves, previous), name
        assert v["velocity"] == pytest.approx(moves / totals["circulation"], abs=1e-6), name
        assert v["previousVelocity"] == pytest.approx(previous / totals["circulation"], abs=1e-6), name
    assert any(snap["velocity"][name]["moves"] for name in WINDOWS)  # the comparison is not all zeros
    await check_edges(s, snap)


def iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


async def test_snapshot_is_exact_after_50k_transfers(
        ledger_settings: Settings, ledger_runner: Callable[..., Awaitable[None]],
        process_factory: Callable[..., WorkerProcess]) -> None:
    s = ledger_settings.model_copy(update={"hot_ducats": 100})  # the hot ducats are the ledger's sink's
    worker = process_factory("worker", s, DUCATS_HOT_EDGES="50")
    await wait_worker_ready(s, worker)
    await run_workload(s, ledger_runner, transfers=50_000, seed=4)
    await wait_caught_up(s, timeout=300)
    totals = ledger_totals(s)
    snap = await wait_snapshot_at(s, totals["seq"], [worker])
    await check(s, snap, totals)
    # The transfers run past the mints' 12:00, so the windows compared above are not empty
    # (all on one day: the day before has none).
    v = snap["velocity"]
    assert all(min(v[n]["moves"], v[n]["previousMoves"]) > 0 for n in ("1m", "1h")) and v["1d"]["moves"] > 0, v
    windows, horizon = await merged_windows(s)
    reference = await reference_windows(s)
    assert len(reference["1m"]) > KEEP["1m"]  # the workload outlives the kept 1-minute windows
    assert kept(windows, horizon) == kept(reference, horizon)
    assert len(kept(windows, horizon)["1m"]) >= KEEP["1m"] - 1
    assert snap["transfers"] + snap["mints"] == totals["seq"]
    await check_hot_cache(s, snap)


async def check_hot_cache(s: Settings, snap: dict[str, Any]) -> None:
    """The top set holds exactly the 100 highest transfer counts, each with its
    true count; recent transactions and edges stay inside their bounds."""
    await wait_hot_seq(s, snap["position"]["seq"])
    client = aioredis.Redis.from_url(s.redis_url)
    try:
        top: list[tuple[bytes, float]] = await client.zrevrange(  # type: ignore[assignment]
            s.redis_key("hot", "ducats"), 0, -1, withscores=True)
        details = await client.hlen(s.redis_key("hot", "ducat"))
        recent: list[tuple[bytes, float]] = await client.zrange(  # type: ignore[assignment]
            s.redis_key("hot", "tx"), 0, -1, withscores=True)
        tx_scores = [sc for _, sc in recent]
        chunks = await client.hgetall(s.redis_key("hot", "tx", "data"))
        edges = await client.zcard(s.redis_key("hot", "edges"))
    finally:
        await client.aclose()
    with psycopg.connect(s.database_url) as conn:
        counts: dict[int, int] = dict(conn.execute("SELECT id, transfer_count FROM ducats").fetchall())
        best = [r[0] for r in conn.execute(
            "SELECT transfer_count FROM ducats ORDER BY transfer_count DESC LIMIT 100").fetchall()]
    assert len(top) == details == 100
    assert [int(sc) for _, sc in top] == best
    for member, score in top:
        batch, seq = member.decode().split("-")[1:]
        assert counts[int(batch) * 1_000_000 + int(seq)] == int(score)
    watermark = dt.datetime.fromisoformat(snap["watermark"]).timestamp()
    assert tx_scores and min(tx_scores) >= watermark - 3600
    # One chunk per batch record ("<partition>:<first seq>:<count>"): its transfers in seq order,
    # each one the ledger accepted, the newest one's time its score; at most 100,000 in all.
    assert {m for m, _ in recent} == set(chunks)
    held = 0
    with psycopg.connect(s.database_url) as conn:
        for (member, score), data in zip(recent, (chunks[m] for m, _ in recent), strict=True):
            _, first, count = member.decode().split(":")
            txs = orjson.loads(data)
            seqs = [t["seq"] for t in txs]
            assert len(txs) == int(count) and seqs[0] == int(first) and seqs == sorted(seqs)
            assert max(int(dt.datetime.fromisoformat(t["timestamp"]).timestamp()) for t in txs) == score
            stored: dict[int, str] = dict(conn.execute(
                "SELECT seq, transaction_id FROM transactions WHERE seq = ANY(%s)", [seqs]).fetchall())
            assert all(stored[t["seq"]] == t["transactionId"] for t in txs)
            held += len(txs)
    assert 0 < held <= 100_000
    assert 0 < edges <= 50 and snap["network"]["activeConnections"] == edges


async def test_kill_9_a_worker_mid_run_counts_nothing_twice(
        ledger_settings: Settings, ledger_runner: Callable[..., Awaitable[None]],
        process_factory: Callable[..., WorkerProcess]) -> None:
    s = ledger_settings
    worker = process_factory("worker", s, DUCATS_METRICS_BATCH="2")
    await wait_worker_ready(s, worker)
    await run_workload(s, ledger_runner, transfers=30_000, seed=5)
    deadline = time.monotonic() + 120
    while ((await snapshot(s)) or {"transfers": 0})["transfers"] < 5_000:  # mid-run
        assert time.monotonic() < deadline and worker.alive
        await asyncio.sleep(0.05)
    assert worker.kill() == -9
    partial = await snapshot(s)
    assert partial is not None and partial["transfers"] < 30_000
    # Forget what Redis knew: the restarted worker must rebuild from the changelog.
    client = aioredis.Redis.from_url(s.redis_url)
    await client.delete(s.redis_key("metrics", "partials"), s.redis_key("metrics", "partials", "seq"))
    await client.aclose()

    worker = process_factory("worker", s, DUCATS_METRICS_BATCH="2")
    await wait_caught_up(s, timeout=300)
    totals = ledger_totals(s)
    snap = await wait_snapshot_at(s, totals["seq"], [worker])
    await check(s, snap, totals)
    windows, horizon = await merged_windows(s)
    assert kept(windows, horizon) == kept(await reference_windows(s), horizon)


async def test_two_replicas_split_partitions_and_agree_with_one(
        ledger_settings: Settings, ledger_runner: Callable[..., Awaitable[None]],
        process_factory: Callable[..., WorkerProcess]) -> None:
    s = ledger_settings
    workers = [process_factory("worker", s), process_factory("worker", s)]
    ready = [await wait_worker_ready(s, w) for w in workers]
    deadline = time.monotonic() + 120
    while True:  # the group settles with both members holding partitions
        ready = [await wait_worker_ready(s, w) for w in workers]
        owned = [set(r["partitions"]) for r in ready]
        if all(owned) and not owned[0] & owned[1] and owned[0] | owned[1] == set(range(s.topic_partitions)):
            break
        assert time.monotonic() < deadline, f"partitions never split: {owned}"
        await asyncio.sleep(0.5)
    await run_workload(s, ledger_runner, transfers=20_000, seed=6)
    await wait_caught_up(s, timeout=300)
    totals = ledger_totals(s)
    snap = await wait_snapshot_at(s, totals["seq"], workers)
    await check(s, snap, totals)
    client = aioredis.Redis.from_url(s.redis_url)
    owners = {v for v in (await client.hgetall(s.redis_key("metrics", "owners"))).values()}
    await client.aclose()
    assert len(owners) == 2  # both replicas wrote partials for their own partitions
    windows, horizon = await merged_windows(s)
    assert kept(windows, horizon) == kept(await reference_windows(s), horizon)


async def test_snapshot_and_metric_topic_read_with_redis_cli_and_kcat(
        ledger_settings: Settings, ledger_runner: Callable[..., Awaitable[None]],
        process_factory: Callable[..., WorkerProcess]) -> None:
    s = ledger_settings
    worker = process_factory("worker", s)
    await wait_worker_ready(s, worker)
    await run_workload(s, ledger_runner, transfers=2_000, seed=7)
    await wait_caught_up(s)
    totals = ledger_totals(s)
    await wait_snapshot_at(s, totals["seq"], [worker])
    await asyncio.sleep(s.snapshot_interval * 2)  # one more interval: the topic has it too
    host, port = s.redis_url.split("//")[1].split("/")[0].split(":")
    cli = subprocess.run(["redis-cli", "-h", host, "-p", port, "--raw", "GET", s.redis_key("metrics", "snapshot")],
                         capture_output=True, timeout=30, check=True)
    from_redis = orjson.loads(cli.stdout)
    assert from_redis["circulation"] == totals["circulation"] and from_redis["version"] >= 1
    kcat = subprocess.run(["kcat", "-b", s.kafka_bootstrap, "-C", "-t", s.topic_metrics, "-o", "-1", "-e", "-q",
                           "-f", "%k\\t%s\\n"], capture_output=True, timeout=60, check=True, text=True)
    key, value = kcat.stdout.strip().splitlines()[-1].split("\t", 1)
    assert key == "snapshot" and orjson.loads(value)["supply"] == totals["supply"]
    daily = subprocess.run(["kcat", "-b", s.kafka_bootstrap, "-C", "-t", s.topic_metrics_daily, "-e", "-q",
                            "-f", "%k\\n"], capture_output=True, timeout=60, check=True, text=True)
    assert "2026-11-26" in daily.stdout.split()


async def commit_to_end(s: Settings, topic: str) -> dict[int, int]:
    """Commit the workers' group to the end of ``topic`` from outside, once the group is
    empty: a commit that ran past records nobody folded. Returns the offsets committed."""
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + 60
        while True:  # a stopped static member stays in the group until its session times out
            described = await admin.describe_consumer_groups([s.app_id])
            if described[0].groups[0][2] == "Empty":
                break
            assert time.monotonic() < deadline, f"group {s.app_id} never emptied: {described}"
            await asyncio.sleep(0.5)
    finally:
        await admin.close()
    ends = {TopicPartition(t, p): o for (t, p), o in (await end_offsets(s, [topic])).items()}
    tps = sorted(ends)
    consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, group_id=s.app_id, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.commit({tp: ends[tp] for tp in tps})
    finally:
        await consumer.stop()
    return {tp.partition: ends[tp] for tp in tps}


async def test_a_restarted_worker_reads_on_from_its_tables_not_from_a_commit_that_ran_ahead(
        ledger_settings: Settings, ledger_runner: Callable[..., Awaitable[None]],
        process_factory: Callable[..., WorkerProcess]) -> None:
    """The group's committed offsets can pass records the tables never folded (a Faust
    commit past an unacked offset, a table that came back older). The worker reads on
    from the position its metrics records keep (streams/transport.py), so it still
    folds them: here the whole second half of the log, committed past while it was down."""
    s = ledger_settings
    w = make_workload(seed=9, batches=10, batch_size=1000, transfers=6_000, clock=clock)
    worker = process_factory("worker", s)
    await wait_worker_ready(s, worker)
    await publish(s, s.topic_mints, [(b"k", x) for x in w.mints])
    await ledger_runner(s)
    await publish(s, s.topic_transactions, w.transfers[:3_000])
    await wait_caught_up(s)
    await wait_snapshot_at(s, ledger_totals(s)["seq"], [worker])
    assert worker.stop() == 0

    await publish(s, s.topic_transactions, w.transfers[3_000:])
    await wait_caught_up(s)
    committed = await commit_to_end(s, s.topic_accepted_batches)
    assert sum(committed.values()) > 0

    worker = process_factory("worker", s)
    totals = ledger_totals(s)
    snap = await wait_snapshot_at(s, totals["seq"], [worker], timeout=120)
    await check(s, snap, totals)
    assert '"source": "tables"' in worker.log_path.read_text() or "source=tables" in worker.log_path.read_text()
