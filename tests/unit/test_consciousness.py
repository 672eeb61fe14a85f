"""The consciousness model (ducats.domain.consciousness), by hand.

Expected numbers come from the formulas in the module docstring, worked out
here with ``math``; the model is only called to be checked."""
from __future__ import annotations

import datetime as dt
from math import exp, log

import pytest

from ducats.domain.consciousness import (MAX_MEMORIES_PER_DUCAT, DucatState, Memory, decile_of, document, remember,
                                         remember_one, resonance_of, stage_of, temperature_of)
from ducats.domain.ledger import Accepted, LedgerBatch

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
D = 5_000_001                       # BATCH-5-000001, the ducat we follow
BATCH = list(range(D, D + 10_000))  # all 10,000 ducats of batch 5


def _transfer(b: LedgerBatch, tx: str, frm: str, to: str, ids: list[int], at: dt.datetime) -> Accepted:
    result = b.apply_transfer(transaction_id=tx, sender=frm, receiver=to, ducats=ids, at=at)
    assert isinstance(result, Accepted), result
    return result


def life_of_d() -> LedgerBatch:
    """Minted with 9,999 others to the treasury; then five transfers, two of them with all 10,000."""
    b = LedgerBatch(holders={}, referenced=BATCH, seen_transactions=set(), seen_mints=set())
    b.apply_mint(mint_id="m5", lo=D, hi=D + 9_999, holder="treasury", at=T0)
    _transfer(b, "t1", "treasury", "alice", [D], T0 + H)             # 1 ducat
    _transfer(b, "t2", "treasury", "alice", BATCH[1:], T0 + H)       # the 9,999 others (not D)
    _transfer(b, "t3", "alice", "bob", BATCH, T0 + 2 * H)            # all 10,000
    _transfer(b, "t4", "bob", "alice", [D], T0 + 2 * H + 72 * H)     # after three days at rest; back to alice
    _transfer(b, "t5", "alice", "carol", [D], T0 + 2 * H + 72 * H + H / 2)
    b.finish()
    return b


def test_a_ducats_life_by_hand() -> None:
    b = life_of_d()
    st = b.changes[D]
    impact_1 = round(log(2) / log(10_001), 6)   # 0.075257; t3 moves 10,000: impact 1.0
    assert impact_1 == 0.075257
    assert (st.holder, st.previous_holder, st.last_seq) == ("carol", "alice", 6)  # seq 1 is the mint
    assert st.transfer_count == 4
    assert st.impact_sum == 1.225771 == round(3 * impact_1 + 1.0, 6)
    # hops: alice (new), bob (new), alice again right after bob held it (ping-pong: no), carol (new)
    assert st.network_hops == 3
    aware = (1 - exp(-4 / 20), 1 - exp(-1.225771 / 5), 1 - exp(-3 / 10))
    assert [round(a, 6) for a in aware] == [0.181269, 0.217416, 0.259182]
    level = round(0.4 * aware[0] + 0.35 * aware[1] + 0.25 * aware[2], 6)
    assert st.level == level == 0.213399
    assert st.stage == 1                          # 0.1 <= 0.213399 < 0.25
    # the stage rose at t3: after it, level = 0.4(1-e^-0.1) + 0.35(1-e^-1.075257/5) + 0.25(1-e^-0.2)
    assert round(0.4 * (1 - exp(-0.1)) + 0.35 * (1 - exp(-1.075257 / 5)) + 0.25 * (1 - exp(-0.2)), 6) == 0.151107
    assert st.evolved_at == T0 + 2 * H
    assert st.temperature == "hot" and b.watermark == T0 + 74.5 * H
    h = (D * 0x9E3779B97F4A7C15 % 2**64) / 2**64
    assert resonance_of(D, st.level) == round(0.01 + 0.09 * h * 0.213399, 6)


def test_the_document_the_api_shows_is_built_from_the_columns() -> None:
    st = life_of_d().changes[D]
    shown = document(D, transfer_count=st.transfer_count, impact_sum=st.impact_sum, network_hops=st.network_hops,
                     stage=st.stage, level=st.level, last_evolution="2026-01-01T02:00:00Z")
    assert st.evolved_at == T0 + 2 * H  # the time the caller formats
    h = (D * 0x9E3779B97F4A7C15 % 2**64) / 2**64
    assert shown == {"awareness": {"self": 0.181269, "purpose": 0.217416, "network": 0.259182},
                     "evolutionStage": 1, "resonanceFrequency": round(0.01 + 0.09 * h * 0.213399, 6),
                     "lastEvolution": "2026-01-01T02:00:00Z"}
    # a ducat that never moved has none; a stage that never rose has no lastEvolution
    assert document(D, transfer_count=0, impact_sum=0.0, network_hops=0, stage=0, level=0.0,
                    last_evolution=None) is None
    assert document(D, transfer_count=1, impact_sum=0.075257, network_hops=1, stage=0, level=0.04,
                    last_evolution=None)["lastEvolution"] is None  # type: ignore[index]


def test_the_memories_it_keeps() -> None:
    mine = [(m.memory_id, m.kind, m.counterparty, m.significance, m.created_at)
            for m in life_of_d().memories if m.ducat_id == D]
    assert mine == [
        (2, "left_treasury", "alice", 0.7, T0 + H),         # beats first_transfer (0.6) and impact 0.075257
        (4, "great_transfer", "bob", 1.0, T0 + 2 * H),      # beats stage_up to 1 (0.6)
        (5, "reawakened", "alice", 0.55, T0 + 74 * H),      # rested 72 h >= 24 h
    ]                                                       # t5: impact 0.075257, nothing else: below 0.5


def test_census_deltas_of_the_batch() -> None:
    b = life_of_d()
    # 10,000 minted (cold, stage 0, level 0.0), all moved; only D moved within the last hour of the
    # watermark (T0 + 74.5 h): the others last moved at T0 + 2 h, so they are cold again.
    assert b.census["temperature", "cold"] == 9_999 and b.census["temperature", "hot"] == 1
    assert b.census["temperature", "warm"] == 0
    # D: level 0.213399 (stage 1, decile 0.2). The 9,999 others moved twice with impacts 0.999989 and 1:
    other = round(0.4 * (1 - exp(-2 / 20)) + 0.35 * (1 - exp(-1.999989 / 5)) + 0.25 * (1 - exp(-2 / 10)), 6)
    assert other == 0.19877 and stage_of(other) == 1
    assert b.census["stage", "0"] == 0 and b.census["stage", "1"] == 10_000
    assert (b.census["level", "0.0"], b.census["level", "0.1"], b.census["level", "0.2"]) == (0, 9_999, 1)


@pytest.mark.parametrize(("age", "expected"), [
    (dt.timedelta(0), "hot"), (H, "hot"), (H + dt.timedelta(microseconds=1), "warm"),
    (24 * H, "warm"), (24 * H + dt.timedelta(microseconds=1), "cold"), (-H, "hot"),
])
def test_temperature_in_event_time(age: dt.timedelta, expected: str) -> None:
    assert temperature_of(T0, T0 + age) == expected
    assert temperature_of(None, T0) == "cold"


def test_stage_and_decile_boundaries() -> None:
    assert [stage_of(x) for x in (0.0, 0.099999, 0.1, 0.249999, 0.25, 0.45, 0.7, 0.899999, 0.9, 1.0)] == [
        0, 0, 1, 1, 2, 3, 4, 4, 5, 5]
    assert [decile_of(x) for x in (0.0, 0.099999, 0.1, 0.3, 0.7, 0.999999, 1.0)] == [
        "0.0", "0.0", "0.1", "0.3", "0.7", "0.9", "0.9"]


def mem(i: int, kind: str, party: str | None = "x", sig: float = 0.6) -> Memory:
    return Memory(ducat_id=1, memory_id=i, created_at=T0 + i * H, kind=kind, counterparty=party,
                  memory=f"{kind} {i}", significance=sig)


def test_similar_memories_aggregate_and_old_ones_compress() -> None:
    assert MAX_MEMORIES_PER_DUCAT == 8
    new = [mem(i, f"k{i}") for i in range(1, 9)]                  # 8 distinct: exactly full
    new += [mem(9, "k3", sig=0.9)]                                # same kind and party as #3: aggregates
    new += [mem(10, "k10")]                                       # a 9th row: #1 and #2 fold into a summary
    new += [mem(11, "k2")]                                        # #2 is compressed now: a new row; #3 folds
    rows, removed = remember_one([], new)
    assert removed == []                                          # nothing of these was stored before
    assert len(rows) == MAX_MEMORIES_PER_DUCAT
    summary = rows[0]
    assert (summary.memory_id, summary.kind, summary.compressed, summary.created_at) == (1, "summary", True, T0 + H)
    assert (summary.occurrences, summary.significance) == (1 + 1 + 2, 0.9)  # #1, #2 and #3 with its repeat
    assert summary.memory == "4 older memories, the strongest 0.9"
    assert [(r.memory_id, r.kind, r.occurrences) for r in rows[1:]] == [
        (4, "k4", 1), (5, "k5", 1), (6, "k6", 1), (7, "k7", 1), (8, "k8", 1), (10, "k10", 1), (11, "k2", 1)]


def test_aggregation_keeps_the_text_of_the_strongest_and_the_first_id() -> None:
    rows, _ = remember_one([mem(1, "a", sig=0.6)], [mem(2, "a", sig=0.8), mem(3, "a", sig=0.8), mem(4, "a", "y")])
    assert [(r.memory_id, r.occurrences, r.significance, r.memory) for r in rows] == [
        (1, 3, 0.8, "a 2"), (4, 1, 0.6, "a 4")]


def test_memories_do_not_depend_on_the_batch_cut() -> None:
    events = [mem(i, f"k{i % 5}", party=f"p{i % 3}", sig=0.5 + (i % 7) / 20) for i in range(1, 60)]
    whole, _ = remember_one([], [_copy(m) for m in events])
    stored: list[Memory] = []
    for cut in (range(0, 7), range(7, 8), range(8, 31), range(31, 59)):
        rows, removed = remember_one(stored, [_copy(events[i]) for i in cut])
        assert {r.memory_id for r in removed} <= {r.memory_id for r in stored}
        stored = [_copy(r, dirty=False) for r in rows]          # what the database holds afterwards
    assert [_key(r) for r in stored] == [_key(r) for r in whole]


def test_remember_writes_only_what_changed() -> None:
    stored = {1: [_copy(mem(i, f"k{i}"), dirty=False) for i in range(1, 9)]}
    writes = remember(stored, [mem(20, "k5"), mem(21, "new"), Memory(
        ducat_id=2, memory_id=21, created_at=T0, kind="k", counterparty=None, memory="m", significance=0.6)])
    assert [(m.ducat_id, m.memory_id, m.kind, m.occurrences) for m in writes.new] == [
        (1, 21, "new", 1), (2, 21, "k", 1)]
    assert [(m.memory_id, m.kind, m.occurrences) for m in writes.changed] == [(1, "summary", 2), (5, "k5", 2)]
    assert [m.memory_id for m in writes.gone] == [2]
    assert writes.counts == {1: 8, 2: 1}                  # ducat 2 had no rows stored


def test_a_ducat_minted_and_moved_in_one_batch_starts_fresh() -> None:
    st = DucatState(id=7, holder="a")
    assert (st.transfer_count, st.stage, st.origin) == (0, 0, ("cold", 0, 0.0))


def _copy(m: Memory, *, dirty: bool = True) -> Memory:
    return Memory(ducat_id=m.ducat_id, memory_id=m.memory_id, created_at=m.created_at, kind=m.kind,
                  counterparty=m.counterparty, memory=m.memory, significance=m.significance,
                  occurrences=m.occurrences, compressed=m.compressed, dirty=dirty)


def _key(m: Memory) -> tuple[object, ...]:
    return (m.memory_id, m.created_at, m.kind, m.counterparty, m.memory, m.significance, m.occurrences, m.compressed)


def test_left_treasury_follows_the_configured_treasury() -> None:
    """DUCATS_TREASURY names the treasury for the memories too, not a constant."""
    def first_memory_kind(treasury: frozenset[str]) -> str:
        b = LedgerBatch(holders={}, referenced=BATCH, seen_transactions=set(), seen_mints=set(),
                        treasury=treasury)
        b.apply_mint(mint_id="m5", lo=D, hi=D + 9_999, holder="reserve", at=T0)
        _transfer(b, "t1", "reserve", "alice", [D], T0 + H)
        b.finish()
        return [m.kind for m in b.memories if m.ducat_id == D][0]

    assert first_memory_kind(frozenset({"reserve"})) == "left_treasury"     # 0.7 beats first_transfer 0.6
    assert first_memory_kind(frozenset({"treasury"})) == "first_transfer"   # "reserve" is just a holder
