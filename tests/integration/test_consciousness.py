"""The consciousness model as the ledger stores it, against real Kafka and
PostgreSQL, on both storage paths: the census is exact, temperatures follow
the watermark, memories stay bounded, counters match a second implementation,
and the state does not depend on how the log was cut into batches."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psycopg
import pytest

from ducats.domain.consciousness import MAX_MEMORIES_PER_DUCAT
from ducats.settings import Settings
from sinks.postgres.migrate import migrate
from tests.fixtures.consciousness import census, counted, snapshot, twin
from tests.fixtures.ledger import publish, wait_caught_up
from tests.reference import Workload, make_workload

Runner = Callable[..., Awaitable[None]]
START = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def clock(i: int) -> str:
    """40 s apart, up to 20 min out of order (every 97th three hours late), and a
    two-day lull every 1,500 transfers, so that ducats go warm and cold, cool in
    later batches, arrive already cold, and reawaken."""
    jitter = (i * 7919) % 2401 - 1200 - (10_800 if i % 97 == 0 else 0)
    at = START + dt.timedelta(seconds=40 * i + jitter) + dt.timedelta(days=2) * (i // 1500)
    return at.isoformat()


async def run(s: Settings, ledger_runner: Runner, w: Workload, *, max_records: int) -> None:
    await publish(s, s.topic_mints, [(b"k", m) for m in w.mints])
    await publish(s, s.topic_transactions, w.transfers)
    await ledger_runner(s, max_records=max_records)
    await wait_caught_up(s)


async def test_census_is_exact_and_temperatures_follow_the_watermark(
        ledger_settings: Settings, ledger_runner: Runner) -> None:
    s = ledger_settings
    w = make_workload(seed=4040, batches=10, batch_size=500, transfers=6000, clock=clock)
    await run(s, ledger_runner, w, max_records=700)
    with psycopg.connect(s.database_url) as conn:
        assert census(conn) == counted(conn)
        assert sum(n for (d, _), n in census(conn).items() if d == "stage") == 5000
        stale = conn.execute(
            """SELECT count(*) FROM ducats, ledger_state
               WHERE temperature <> CASE WHEN last_transfer_at >= watermark - INTERVAL '1 hour' THEN 'hot'
                                         WHEN last_transfer_at >= watermark - INTERVAL '24 hours' THEN 'warm'
                                         ELSE 'cold' END::temperature""").fetchone()
        assert stale == (0,)
        mix: dict[str, int] = dict(conn.execute("SELECT temperature::text, count(*) FROM ducats GROUP BY 1").fetchall())
        assert mix.get("hot", 0) > 0 and mix.get("warm", 0) > 0 and mix["cold"] > 0, mix
        state = {r[0]: r[1:] for r in conn.execute(
            """SELECT id, holder, previous_holder, transfer_count, impact_sum, network_hops, consciousness_level, stage
               FROM ducats""")}
    assert_counters_match(w, state)


def assert_counters_match(w: Workload, state: dict[int, tuple[Any, ...]]) -> None:
    """A second implementation, from the rules in ducats/domain/consciousness.py's docstring."""
    holder: dict[int, str] = {i: "treasury" for i in state}
    previous: dict[int, str | None] = {}
    counts: dict[int, list[float]] = {}  # id -> [transfers, impact sum, hops]
    for tx in accepted_in_order(w):
        impact = round(math.log1p(len(tx["ducatIds"])) / math.log1p(10_000), 6)
        for d in map(_id, tx["ducatIds"]):
            c = counts.setdefault(d, [0, 0.0, 0])
            c[0] += 1
            c[1] = round(c[1] + impact, 6)
            c[2] += tx["to"] != previous.get(d)
            previous[d], holder[d] = holder[d], tx["to"]
    for d, (h, prev, count, impact_sum, hops, level, stage) in state.items():
        n, s, k = counts.get(d, [0, 0.0, 0])
        assert (h, prev, count, hops) == (holder[d], previous.get(d), n, k), d
        assert abs(impact_sum - s) < 1e-9, d
        if n:
            want = 0.4 * (1 - math.exp(-n / 20)) + 0.35 * (1 - math.exp(-s / 5)) + 0.25 * (1 - math.exp(-k / 10))
            assert abs(level - round(want, 6)) < 1e-6, d
            assert stage == sum(round(want, 6) >= f for f in (0.1, 0.25, 0.45, 0.7, 0.9)), d


def accepted_in_order(w: Workload) -> list[dict[str, Any]]:
    pending = set(w.reference.accepted)
    out = []
    for _, raw in w.transfers:
        tx = orjson.loads(raw)
        if tx["transactionId"] in pending:
            pending.discard(tx["transactionId"])
            out.append(tx)
    return out


def _id(ducat: str) -> int:
    _, batch, seq = ducat.split("-")
    return int(batch) * 1_000_000 + int(seq)


async def test_memories_stay_bounded_over_a_long_life(ledger_settings: Settings, ledger_runner: Runner) -> None:
    s = ledger_settings
    w = make_workload(seed=77, batches=1, batch_size=24, transfers=4000, holders=6, invalid_share=0.02,
                      clock=clock)
    await run(s, ledger_runner, w, max_records=300)
    with psycopg.connect(s.database_url) as conn:
        moves = conn.execute("SELECT min(transfer_count), max(stage) FROM ducats").fetchone()
        rows = conn.execute(
            """SELECT ducat_id, count(*), count(*) FILTER (WHERE compressed), sum(occurrences),
                      count(DISTINCT (kind, counterparty)) FILTER (WHERE NOT compressed),
                      count(*) FILTER (WHERE NOT compressed),
                      bool_and(NOT compressed OR memory_id = (SELECT min(memory_id) FROM ducat_memories o
                                                              WHERE o.ducat_id = m.ducat_id))
               FROM ducat_memories AS m GROUP BY ducat_id""").fetchall()
        assert census(conn) == counted(conn)
    assert moves is not None and moves[0] >= 200 and moves[1] >= 4, moves  # hundreds of moves each
    assert len(rows) == 24
    for ducat, n, compressed, occurrences, distinct_live, live, summary_first in rows:
        assert n <= MAX_MEMORIES_PER_DUCAT, (ducat, n)
        assert compressed <= 1 and summary_first, ducat         # one summary, the oldest row
        assert distinct_live == live, ducat                     # similar live memories are aggregated
        assert occurrences > n, ducat                           # aggregation and compression happened
    assert any(compressed for _, _, compressed, *_ in rows)


async def test_state_does_not_depend_on_the_batch_cut(
        ledger_settings: Settings, ledger_runner: Runner, settings_factory: Callable[..., Settings],
        database_factory: Callable[[], str]) -> None:
    w = make_workload(seed=5150, batches=4, batch_size=300, transfers=3500, holders=20, clock=clock)
    big = ledger_settings
    small = await twin(big, settings_factory, database_factory)
    await run(big, ledger_runner, w, max_records=5000)
    await run(small, ledger_runner, w, max_records=97)
    assert snapshot(big) == snapshot(small)


@pytest.mark.parametrize("timescale", ["on", "off"])
def test_migration_backfills_counters_temperatures_and_census(
        timescale: str, database_factory: Callable[[], str]) -> None:
    """A ledger that ran before 0003: its ducats get their counters from the
    transactions, their temperatures from the watermark, and the census counts them."""
    url = database_factory()
    migrate(url, timescale=timescale, target=2)
    t = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    moves = [(2, "treasury", "a", [1_000_001, 1_000_002], t), (3, "a", "b", [1_000_001], t + 1 * H),
             (4, "b", "a", [1_000_001], t + 2 * H), (5, "treasury", "c", [1_000_003], t + 30 * H)]
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO mints VALUES ('m1', 1, 1, 1, 5, 'treasury', %s)", [t])
        conn.execute("""INSERT INTO ducats (id, batch, holder, mint_id, minted_at)
                        SELECT 1000000 + s, 1, 'treasury', 'm1', %s FROM generate_series(1, 5) AS s""", [t])
        if timescale == "off":
            conn.execute("SELECT ducats_ensure_month_partition(%s)", [t.date()])
        for seq, frm, to, ids, at in moves:  # what the ledger wrote before 0003
            impact = round(math.log1p(len(ids)) / math.log1p(10_000), 6)
            conn.execute("""INSERT INTO transactions (seq, transaction_id, ts, sender, receiver, ducat_ids, ducat_count,
                                                      consciousness_impact) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
                         [seq, f"t{seq}", at, frm, to, ids, len(ids), impact])
            conn.execute("""UPDATE ducats SET holder = %s, transfer_count = transfer_count + 1, last_tx_seq = %s,
                                              last_transfer_at = %s WHERE id = ANY(%s)""", [to, seq, at, ids])
        conn.execute("UPDATE ledger_state SET last_seq = 5")
    assert migrate(url, timescale=timescale, target=3) == ["0003_consciousness"]
    with psycopg.connect(url) as conn:
        rows = conn.execute("""SELECT id, holder, previous_holder, transfer_count, impact_sum, network_hops,
                                      temperature::text FROM ducats ORDER BY id""").fetchall()
        watermark = conn.execute("SELECT watermark FROM ledger_state").fetchone()
        assert census(conn) == counted(conn)
        assert census(conn)[("temperature", "hot")] == 1 and census(conn)[("stage", "0")] == 5
    one, two = round(math.log(3) / math.log(10_001), 6), round(math.log(2) / math.log(10_001), 6)
    assert rows == [
        # a (new), b (new), back to a right after it held it (ping-pong: no hop); 28 h before the watermark
        (1_000_001, "a", "b", 3, round(round(one + two, 6) + two, 6), 2, "cold"),  # as the ledger sums
        (1_000_002, "a", "treasury", 1, one, 1, "cold"),
        (1_000_003, "c", "treasury", 1, two, 1, "hot"),   # the watermark itself
        (1_000_004, "treasury", None, 0, 0.0, 0, "cold"),
        (1_000_005, "treasury", None, 0, 0.0, 0, "cold"),
    ]
    assert watermark == (t + 30 * H,)
