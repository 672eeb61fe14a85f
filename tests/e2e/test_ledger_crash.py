"""kill -9 the ledger mid-workload, twice, and restart it: the result equals
the reference (a clean run's), with no accepted transfer missing or doubled in
the table or on the accepted topic, and the consciousness state (ducats,
memories, census) equals a clean run's with other batch sizes."""
from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import psycopg
import redis

from ducats.keys import RedisKeys
from ducats.procs import WorkerProcess
from schemas import batches
from ducats.settings import Settings
from tests.fixtures.consciousness import census, counted, snapshot, twin
from tests.fixtures.ledger import hot_seq, publish, read_all, wait_caught_up, wait_hot_seq
from tests.reference import make_workload


def last_seq(s: Settings) -> int:
    with psycopg.connect(s.database_url) as conn:
        return int(conn.execute("SELECT last_seq FROM ledger_state").fetchone()[0])  # type: ignore[index]


async def wait_for(what: str, check: Callable[[], Any], proc: WorkerProcess | None = None,
                   timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert proc is None or proc.alive, proc.post_mortem()
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)
    return value


async def wait_seq(s: Settings, at_least: int, proc: WorkerProcess, timeout: float = 120) -> None:
    await wait_for(f"the ledger did not reach seq {at_least}", lambda: last_seq(s) >= at_least, proc, timeout)


def check_chains(batch_records: list[Any], accepted: list[Any]) -> None:
    """Per partition, the batch records chain without a break across the ledger's
    restarts (each ``prev`` is the seq the record before ended at: accepted_chain),
    and carry that partition's accepted events, each once, in seq order."""
    by_partition: dict[int, list[int]] = {}
    for r in accepted:
        by_partition.setdefault(r.partition, []).append(orjson.loads(r.value)["seq"])
    chained: dict[int, list[int]] = {}
    heads: dict[int, int] = {}
    for r in batch_records:
        record = batches.decode(r.value)
        assert record.prev == heads.get(r.partition, 0), f"partition {r.partition} offset {r.offset}"
        heads[r.partition] = record.last
        chained.setdefault(r.partition, []).extend(e["seq"] for e in record.events)
    assert chained == {p: sorted(seqs) for p, seqs in by_partition.items()}


async def test_kill_9_mid_workload_loses_and_doubles_nothing(
        ledger_settings: Settings, ledger_process: Callable[..., WorkerProcess],
        ledger_runner: Callable[..., Awaitable[None]], settings_factory: Callable[..., Settings],
        database_factory: Callable[[], str]) -> None:
    s = ledger_settings
    w = make_workload(seed=99, batches=20, batch_size=1000, transfers=20_000)
    await publish(s, s.topic_mints, [(b"k", m) for m in w.mints])
    await publish(s, s.topic_transactions, w.transfers)
    expected_seq = len(w.mints) + len(w.reference.accepted)

    small_batches = {"DUCATS_LEDGER_BATCH": "400"}  # many commits, so the kill lands mid-stream
    proc = ledger_process(s, **small_batches)
    for fraction in (0.3, 0.65):
        await wait_seq(s, int(expected_seq * fraction), proc)
        assert proc.kill() == -9
        assert last_seq(s) < expected_seq, "the workload finished before the crash"
        proc = ledger_process(s, **small_batches)
    await wait_caught_up(s)
    assert proc.stop() == 0

    with psycopg.connect(s.database_url) as conn:
        rows = conn.execute("SELECT id, holder FROM ducats").fetchall()
        counts = conn.execute("SELECT count(*), count(DISTINCT transaction_id), max(seq) FROM transactions").fetchone()
    assert {f"BATCH-{i // 1_000_000}-{i % 1_000_000:06d}": h for i, h in rows} == w.reference.holder
    assert counts == (len(w.reference.accepted), len(w.reference.accepted), expected_seq)
    assert last_seq(s) == expected_seq

    accepted = [orjson.loads(r.value) for r in await read_all(s, s.topic_accepted)]
    assert Counter(a.get("transactionId") for a in accepted if "transactionId" in a) == Counter(w.reference.accepted)
    assert sorted(a["seq"] for a in accepted) == list(range(1, expected_seq + 1))
    rejected = [orjson.loads(r.value) for r in await read_all(s, s.topic_rejected)]
    assert Counter((r["transactionId"], r["reason"]) for r in rejected) == Counter(w.reference.rejected)
    check_chains(await read_all(s, s.topic_accepted_batches), await read_all(s, s.topic_accepted))

    with psycopg.connect(s.database_url) as conn:
        assert census(conn) == counted(conn)
    clean = await twin(s, settings_factory, database_factory)  # the same log, no crash, batches of 5,000
    await publish(clean, clean.topic_mints, [(b"k", m) for m in w.mints])
    await publish(clean, clean.topic_transactions, w.transfers)
    await ledger_runner(clean)
    await wait_caught_up(clean)
    assert snapshot(s) == snapshot(clean)


def state_seq(s: Settings) -> int:
    with psycopg.connect(s.database_url) as conn:
        return int(conn.execute("SELECT last_seq FROM ducat_state_position").fetchone()[0])  # type: ignore[index]


async def wait_state_seq(s: Settings, at_least: int, proc: WorkerProcess, timeout: float = 120) -> None:
    await wait_for(f"the ducat-state sink did not reach seq {at_least}", lambda: state_seq(s) >= at_least, proc,
                   timeout)


async def test_state_sink_kill_mid_batch(
        ledger_settings: Settings, ledger_process: Callable[..., WorkerProcess],
        ledger_runner: Callable[..., Awaitable[None]], settings_factory: Callable[..., Settings],
        database_factory: Callable[[], str]) -> None:
    """kill -9 while the ducat-state sink is in the middle of a backlog, twice: once while the
    ledger is still deciding (so the restarted ledger must rebuild its ownership index from the
    transactions the sink had not applied), once after the ledger has decided everything (only
    the sink works). The result equals the reference and a clean run, table by table."""
    s = ledger_settings
    w = make_workload(seed=41, batches=20, batch_size=1000, transfers=20_000)
    await publish(s, s.topic_mints, [(b"k", m) for m in w.mints])
    await publish(s, s.topic_transactions, w.transfers)
    expected_seq = len(w.mints) + len(w.reference.accepted)
    env = {"DUCATS_LEDGER_BATCH": "400", "DUCATS_STATE_BATCH": "100"}  # many commits on both sides

    # The sink waits on its position row, held here, so a backlog builds up.
    hold = psycopg.connect(s.database_url)
    try:
        hold.execute("SELECT * FROM ducat_state_position FOR UPDATE")
        proc = ledger_process(s, **env)
        await wait_seq(s, expected_seq // 2, proc)
        start = state_seq(s)
        hold.rollback()  # the sink goes: kill it a few ranges into the backlog, the ledger still deciding
        await wait_state_seq(s, start + 300, proc)
        assert proc.kill() == -9
        killed_at, decided = state_seq(s), last_seq(s)
        assert killed_at < decided < expected_seq, (killed_at, decided, expected_seq)

        hold.execute("SELECT * FROM ducat_state_position FOR UPDATE")
        proc = ledger_process(s, **env)  # its index: the rows as of killed_at, then the moves after it
        await wait_seq(s, expected_seq, proc)
        start = state_seq(s)
        hold.rollback()
        await wait_state_seq(s, start + 300, proc)
        assert proc.kill() == -9
        assert state_seq(s) < last_seq(s) == expected_seq
    finally:
        hold.close()
    proc = ledger_process(s, **env)
    await wait_caught_up(s)
    assert proc.stop() == 0
    assert state_seq(s) == expected_seq

    await matches_reference_and_clean_run(s, w, ledger_runner, settings_factory, database_factory)


def hot_set(s: Settings) -> tuple[list[tuple[bytes, float]], dict[bytes, dict[str, Any]]]:
    """The hot ducats and their details, but the temperature: a set rebuilt from ``ducats``
    shows the cooling since each ducat's move, one kept range by range its move's."""
    keys = RedisKeys.of(s)
    with redis.Redis.from_url(s.redis_url) as r:
        members: Any = r.zrange(keys.hot_ducats, 0, -1, withscores=True)
        details: Any = r.hgetall(keys.hot_ducat)
    return members, {k: {f: v for f, v in orjson.loads(d).items() if f != "temperature"} for k, d in details.items()}


async def matches_reference_and_clean_run(s: Settings, w: Any, ledger_runner: Callable[..., Awaitable[None]],
                                          settings_factory: Callable[..., Settings],
                                          database_factory: Callable[[], str]) -> None:
    """Every ducat's holder and the rejections are the reference model's, the census is what
    the rows count, every table equals a clean run's of the same input, and so do the hot
    cache's most active ducats, as of the last seq."""
    with psycopg.connect(s.database_url) as conn:
        rows = conn.execute("SELECT id, holder FROM ducats").fetchall()
        assert census(conn) == counted(conn)
    assert {f"BATCH-{i // 1_000_000}-{i % 1_000_000:06d}": h for i, h in rows} == w.reference.holder
    rejected = [orjson.loads(r.value) for r in await read_all(s, s.topic_rejected)]
    assert Counter((r["transactionId"], r["reason"]) for r in rejected) == Counter(w.reference.rejected)
    clean = await twin(s, settings_factory, database_factory)
    await publish(clean, clean.topic_mints, [(b"k", m) for m in w.mints])
    await publish(clean, clean.topic_transactions, w.transfers)
    await ledger_runner(clean)
    await wait_caught_up(clean)
    assert snapshot(s) == snapshot(clean)
    expected_seq = len(w.mints) + len(w.reference.accepted)
    assert await hot_seq(s) == expected_seq  # the crashed run's ledger is stopped: its last write is there
    await wait_hot_seq(clean, expected_seq)
    crashed = hot_set(s)
    assert sorted(crashed[0]) == reference_top(w, s.hot_ducats)
    assert crashed == hot_set(clean)


def reference_top(w: Any, n: int) -> list[tuple[bytes, float]]:
    """The ``n`` most moved ducats by the reference's decisions (count, then id text), sorted."""
    accepted, moves = set(w.reference.accepted), Counter[str]()
    for _, raw in w.transfers:
        e = orjson.loads(raw)
        if e["transactionId"] in accepted:  # its first occurrence: the one accepted
            accepted.discard(e["transactionId"])
            moves.update(e["ducatIds"])
    return sorted((d.encode(), float(c)) for c, d in sorted(((c, d) for d, c in moves.items()), reverse=True)[:n])


def state_child(proc: WorkerProcess) -> int | None:
    """The pid of the ledger's ducat-state sink process (its child), if it has one now."""
    return next(iter(proc.children()), None)


def running(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


async def test_state_process_killed_alone_or_orphaned(
        ledger_settings: Settings, ledger_process: Callable[..., WorkerProcess],
        ledger_runner: Callable[..., Awaitable[None]], settings_factory: Callable[..., Settings],
        database_factory: Callable[[], str]) -> None:
    """The ducat-state sink's own process (docs/throughput.md step 4), crashed two ways:
    kill -9 of it alone, mid-backlog, while the ledger decides (the ledger must notice, start a
    new term with a new sink, and lose nothing); then kill -9 of the ledger's pid alone (not its
    group), so the sink must not outlive it. The result equals the reference and a clean run."""
    s = ledger_settings
    w = make_workload(seed=43, batches=20, batch_size=1000, transfers=20_000)
    await publish(s, s.topic_mints, [(b"k", m) for m in w.mints])
    await publish(s, s.topic_transactions, w.transfers)
    expected_seq = len(w.mints) + len(w.reference.accepted)
    env = {"DUCATS_LEDGER_BATCH": "400", "DUCATS_STATE_BATCH": "100"}

    hold = psycopg.connect(s.database_url)  # a backlog first: the sink waits on its position row
    try:
        hold.execute("SELECT * FROM ducat_state_position FOR UPDATE")
        proc = ledger_process(s, **env)
        first = await wait_for("the ledger started no ducat-state process", lambda: state_child(proc), proc)
        await wait_seq(s, expected_seq // 3, proc)
        start = state_seq(s)
        hold.rollback()
    finally:
        hold.close()
    await wait_state_seq(s, start + 300, proc)
    os.kill(first, signal.SIGKILL)  # the sink alone, a few ranges into the backlog
    killed_at = state_seq(s)
    # ... as if killed between its commit and its Redis write: the hot ducats' seq back, members lost
    keys = RedisKeys.of(s)
    with redis.Redis.from_url(s.redis_url) as r:
        r.set(keys.hot_ducats_seq, killed_at - 100)
        r.zpopmax(keys.hot_ducats, 50)
    assert killed_at < last_seq(s) < expected_seq, (killed_at, last_seq(s), expected_seq)
    second = await wait_for("no new ducat-state process after the first was killed",
                            lambda: (c := state_child(proc)) != first and c, proc)
    await wait_state_seq(s, killed_at + 300, proc)  # the new one applies on from the stored position
    assert proc.alive, proc.post_mortem()

    os.kill(proc.pid, signal.SIGKILL)  # the ledger's pid only: its child must go with it
    await wait_for(f"the ducat-state process {second} outlived its ledger", lambda: not running(second), timeout=10)
    proc.kill()  # reap the ledger (its group is empty by now)
    assert state_seq(s) < expected_seq

    proc = ledger_process(s, **env)
    await wait_caught_up(s)
    assert proc.stop() == 0
    assert state_seq(s) == last_seq(s) == expected_seq
    await matches_reference_and_clean_run(s, w, ledger_runner, settings_factory, database_factory)
