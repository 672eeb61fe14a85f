"""The benchmark workloads: every generated transfer is valid, runs are reproducible."""
from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from bench.workload import (
    TransferChain,
    ducat_rows,
    holder_changes,
    holder_names,
    holdings_of,
    mint_plan,
    timestamps,
    transaction_rows,
    transfer_moves,
)
from schemas.codec import decode_transfer
from tests.reference import Reference

TS = "2026-11-26T12:00:00+00:00"
START = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)


def chain_of(*, holders: int = 20, per_holder: int = 30, k: int = 5, seed: int = 7) -> TransferChain:
    mints = mint_plan(holders=holder_names(holders), per_holder=per_holder, timestamp=TS)
    return TransferChain(holdings=holdings_of(mints), ducats_per_transfer=k, seed=seed)


def test_mint_plan_gives_each_holder_its_own_batch_in_events_of_at_most_10k() -> None:
    mints = mint_plan(holders=["a", "b"], per_holder=25_000, timestamp=TS)
    assert [(m.holder, m.batch, m.first_seq, m.count) for m in mints] == [
        ("a", 1, 1, 10_000), ("a", 1, 10_001, 10_000), ("a", 1, 20_001, 5_000),
        ("b", 2, 1, 10_000), ("b", 2, 10_001, 10_000), ("b", 2, 20_001, 5_000)]
    rows = list(ducat_rows(mints))
    assert len(rows) == len({r[0] for r in rows}) == 50_000
    assert rows[0] == (1_000_001, 1, "a", "mint-1-1", TS)
    assert Counter(len(v) for v in holdings_of(mints).values()) == {25_000: 2}


def test_every_transfer_of_the_chain_is_accepted_by_the_reference_model() -> None:
    holders, per_holder = holder_names(12), 8
    mints = mint_plan(holders=holders, per_holder=per_holder, timestamp=TS)
    ref = Reference()
    for m in mints:
        ref.mint(m.batch, m.first_seq, m.count, m.holder)
    chain = TransferChain(holdings=holdings_of(mints), ducats_per_transfer=5, seed=3)
    moves = transfer_moves(chain, timestamps(START, 3_000))
    for move in moves:
        t = decode_transfer(move.to_transfer().to_json())  # also valid against the schema
        assert ref.transfer(t.transaction_id, t.sender, t.receiver, list(t.ducat_ids)) is None
    assert len(ref.accepted) == 3_000
    assert len({m.sender for m in moves}) == len({m.receiver for m in moves}) == 12
    assert sum(len(v) for v in chain.held.values()) == 12 * per_holder  # nothing created or lost


def test_the_same_seed_gives_the_same_workload_and_another_seed_another() -> None:
    stamps = timestamps(START, 500)
    assert transfer_moves(chain_of(seed=1), stamps) == transfer_moves(chain_of(seed=1), stamps)
    assert transfer_moves(chain_of(seed=1), stamps) != transfer_moves(chain_of(seed=2), stamps)


def test_a_chain_that_cannot_always_find_a_sender_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot guarantee"):
        chain_of(holders=10, per_holder=4, k=5)  # 40 ducats, 10 holders of 4: nobody may hold 5
    with pytest.raises(ValueError, match="two holders"):
        chain_of(holders=1)


def test_holder_changes_are_netted_per_chunk_like_a_ledger_batch() -> None:
    moves = transfer_moves(chain_of(holders=3, per_holder=6, k=4), timestamps(START, 40))
    chunks = holder_changes(moves, first_seq=101, chunk=15)
    assert len(chunks) == 3
    first = {row[0]: row for row in chunks[0]}
    assert sum(row[2] for rows in chunks for row in rows) == 40 * 4  # every move counted once
    for seq, m in enumerate(moves[:15], start=101):
        for d in m.ducats:
            assert first[d][2] >= 1 and first[d][3] >= seq
    last = moves[14]
    assert all(first[d][1:4:2] == (last.receiver, 115) for d in last.ducats)


def test_transaction_rows_carry_the_ledger_columns() -> None:
    moves = transfer_moves(chain_of(), timestamps(START, 3))
    rows = list(transaction_rows(moves, first_seq=11, applied_at=TS))
    assert [r[0] for r in rows] == [11, 12, 13]
    seq, tx, ts, sender, receiver, ids, count, impact, metadata, applied = rows[0]
    assert (tx, ts, sender, receiver, ids, count, metadata, applied) == (
        moves[0].transaction_id, moves[0].timestamp, moves[0].sender, moves[0].receiver,
        list(moves[0].ducats), 5, "{}", TS)
    assert isinstance(impact, float) and 0 < impact < 1
