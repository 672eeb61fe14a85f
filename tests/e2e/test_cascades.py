"""`ducats cascades` end to end: the ledger, the detector as a real process, and the
alerts in PostgreSQL, Redis and on ``<prefix>.alerts``.

- live: 10 minutes of steady traffic (replayed event time) raise none; then a burst
  at 10x the recent rate raises exactly one alert within 5 s of its start (wall
  clock), and it is ended once the rate is back in its band;
- kill -9 of the detector mid-run, a restart, and the alerts and their audit are
  exactly those of a clean run of the rule over the accepted log."""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psycopg
import redis.asyncio as aioredis

from ducats.domain.cascade import Detector
from ducats.kafka import ensure_topics
from ducats.procs import WorkerProcess
from ducats.settings import Settings
from schemas import batches
from sinks.postgres.migrate import migrate
from streams.topics import pipeline_topics
from tests.fixtures.ledger import publish, read_all, wait_caught_up

SENDERS = [f"s{i}" for i in range(4)]
PER_SENDER = 3000


class Traffic:
    """Transfers of one ducat each from the senders' own mints: always accepted."""

    def __init__(self) -> None:
        self.next = dict.fromkeys(SENDERS, 1)
        self.n = 0

    def mints(self, at: float) -> list[tuple[bytes, bytes]]:
        return [(s.encode(), orjson.dumps({"mintId": f"m-{s}", "batch": i + 1, "firstSeq": 1, "count": PER_SENDER,
                                           "holder": s, "timestamp": iso(at)}))
                for i, s in enumerate(SENDERS)]

    def second(self, at: float, count: int) -> list[tuple[bytes, bytes]]:
        out = []
        for k in range(count):
            s = SENDERS[self.n % len(SENDERS)]
            batch = SENDERS.index(s) + 1
            ducat = f"BATCH-{batch}-{self.next[s]:06d}"
            self.next[s] += 1
            self.n += 1
            out.append((s.encode(), orjson.dumps({"transactionId": f"t{self.n}", "timestamp": iso(at + k / max(count, 1)),
                                                  "from": s, "to": f"r{self.n % 50}", "ducatIds": [ducat]})))
        return out


def iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat()


async def private(settings_factory: Callable[..., Settings], database_factory: Callable[[], str]) -> Settings:
    url = database_factory()
    migrate(url)
    s = settings_factory(database_url=url)
    await ensure_topics(s, pipeline_topics(s))
    return s


def stored_alerts(s: Settings) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    with psycopg.connect(s.database_url) as conn:
        alerts = [r[0] for r in conn.execute("SELECT record FROM alerts ORDER BY start_seq")]
        audit = conn.execute("SELECT alert_id, actor, action FROM alert_audit ORDER BY id").fetchall()
    return alerts, audit


def checkpoint_seq(s: Settings) -> int:
    with psycopg.connect(s.database_url) as conn:
        row = conn.execute("SELECT (detector->>'seq')::bigint FROM cascade_checkpoint").fetchone()
    return 0 if row is None else int(row[0])


def ledger_seq(s: Settings) -> int:
    with psycopg.connect(s.database_url) as conn:
        row = conn.execute("SELECT last_seq FROM ledger_state").fetchone()
    return 0 if row is None else int(row[0])


async def mints_applied(s: Settings, timeout: float = 60) -> None:
    """Until the ledger has applied the senders' mints. A transfer it reads before its ducat's
    mint is rejected (unknown_ducat), and the ledger does not order its two topics against
    each other: with 200 records a fetch, a run once read most transfers first."""
    deadline = time.monotonic() + timeout
    while ledger_seq(s) < len(SENDERS):
        assert time.monotonic() < deadline, f"the ledger applied {ledger_seq(s)} of {len(SENDERS)} mints"
        await asyncio.sleep(0.05)


async def wait_detector(s: Settings, proc: WorkerProcess, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while checkpoint_seq(s) < ledger_seq(s) or ledger_seq(s) == 0:
        assert proc.alive, proc.post_mortem()
        assert time.monotonic() < deadline, f"the detector is at {checkpoint_seq(s)} of {ledger_seq(s)}"
        await asyncio.sleep(0.2)


async def test_a_live_burst_raises_one_alert_within_5_s_and_it_ends_after(
        settings_factory: Callable[..., Settings], database_factory: Callable[[], str],
        ledger_runner: Callable[..., Awaitable[None]], process_factory: Callable[..., WorkerProcess]) -> None:
    s = await private(settings_factory, database_factory)
    await ledger_runner(s, max_records=500)
    watch = process_factory("cascades", s)
    traffic = Traffic()
    now = time.time()
    # 10 minutes of steady history, 8 transfers a second, ending 3 s ago (replayed at once)
    await publish(s, s.topic_mints, traffic.mints(now - 605))
    await mints_applied(s)
    history = [r for k in range(600) for r in traffic.second(now - 603 + k, 8)]
    await publish(s, s.topic_transactions, history)
    await wait_caught_up(s, timeout=120)
    await wait_detector(s, watch)
    assert stored_alerts(s) == ([], [])  # steady traffic: nothing

    client = aioredis.Redis.from_url(s.redis_url)
    key = s.redis_key("alerts", "open")
    raised_after: float | None = None
    try:
        started = time.time()
        for k in range(6):  # live: 80 a second (10x) for 6 s, then 8 a second for 10 s
            await publish(s, s.topic_transactions, traffic.second(time.time(), 80))
            while time.time() < started + k + 1:
                if raised_after is None and await client.hlen(key):
                    raised_after = time.time() - started
                await asyncio.sleep(0.05)
        for k in range(6, 16):
            await publish(s, s.topic_transactions, traffic.second(time.time(), 8))
            while time.time() < started + k + 1:
                if raised_after is None and await client.hlen(key):
                    raised_after = time.time() - started
                await asyncio.sleep(0.05)
        assert raised_after is not None and raised_after <= 5.0, raised_after
        await wait_caught_up(s, timeout=60)
        await wait_detector(s, watch)
        assert await client.hlen(key) == 0   # ended: no longer open
    finally:
        await client.aclose()
    alerts, audit = stored_alerts(s)
    assert len(alerts) == 1, alerts
    alert = alerts[0]
    assert alert["state"] == "ended" and alert["peak"] >= 70 and alert["baseline"]["median"] <= 10
    assert dt.datetime.fromisoformat(alert["startedAt"]).timestamp() >= int(started) - 1
    assert [a[2] for a in audit] == ["opened", "ended"] and {a[1] for a in audit} == {"detector"}
    on_topic = [orjson.loads(r.value) for r in await read_all(s, s.topic_alerts)]
    assert {r["alertId"] for r in on_topic} == {alert["alertId"]}
    assert on_topic[0]["state"] == "open" and on_topic[-1]["state"] == "ended"


async def test_kill_9_of_the_detector_mid_run_leaves_the_alerts_of_a_clean_run(
        settings_factory: Callable[..., Settings], database_factory: Callable[[], str],
        ledger_runner: Callable[..., Awaitable[None]], process_factory: Callable[..., WorkerProcess]) -> None:
    s = await private(settings_factory, database_factory)
    await ledger_runner(s, max_records=200)
    traffic = Traffic()
    t0 = 1_790_000_000.0   # replayed event time: two bursts over 400 s
    await publish(s, s.topic_mints, traffic.mints(t0))
    await mints_applied(s)
    plan = [(150, 6), (8, 70), (100, 6), (6, 90), (120, 6)]
    records, at = [], t0 + 1
    for seconds, rate in plan:
        for _ in range(seconds):
            records += traffic.second(at, rate)
            at += 1
    await publish(s, s.topic_transactions, records)
    watch = process_factory("cascades", s)
    deadline = time.monotonic() + 120
    while checkpoint_seq(s) < len(records) // 3:
        assert watch.alive and time.monotonic() < deadline, watch.post_mortem()
        await asyncio.sleep(0.01)
    assert watch.kill() == -9
    assert checkpoint_seq(s) < len(records)   # it died mid-run
    watch = process_factory("cascades", s)
    await wait_caught_up(s, timeout=120)
    await wait_detector(s, watch)

    # the clean run: the rule over the accepted log, in seq order
    events = sorted((e for r in await read_all(s, s.topic_accepted_batches) for e in batches.decode(r.value).events),
                    key=lambda e: e["seq"])
    clean = Detector()
    final: dict[str, dict[str, Any]] = {}
    for a in clean.feed(events):
        final[a.alert_id] = a.to_dict()
    alerts, audit = stored_alerts(s)
    assert len(final) == 2 and all(a["state"] == "ended" for a in final.values())
    assert [(a["alertId"], a["state"], a["peak"], a["transfers"], a["seconds"], a["startSeq"], a["endSeq"])
            for a in alerts] == [(a["alertId"], a["state"], a["peak"], a["transfers"], a["seconds"], a["startSeq"],
                                  a["endSeq"]) for a in final.values()]
    assert sorted(audit) == sorted((i, "detector", act) for i in final for act in ("opened", "ended"))
