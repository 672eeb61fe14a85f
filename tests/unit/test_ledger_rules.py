"""The pure ledger rules (ducats.domain.ledger), no services."""
from __future__ import annotations

import datetime as dt

import pytest

from ducats.domain.consciousness import transfer_impact
from ducats.domain.ledger import Accepted, LedgerBatch, MintOutcome, Rejected
from schemas.errors import InvalidEvent
from schemas.models import RejectReason
from sinks.postgres.ledger_input import event_time


AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def batch(holders: dict[int, str] | None = None, referenced: list[int] | None = None,
          **kw: object) -> LedgerBatch:
    holders = holders or {}
    return LedgerBatch(holders=dict(holders), referenced=sorted(referenced or holders),
                       seen_transactions=set(), seen_mints=set(), **kw)  # type: ignore[arg-type]


def move(b: LedgerBatch, tx: str, frm: str, to: str, ids: list[int]) -> Accepted | Rejected:
    return b.apply_transfer(transaction_id=tx, sender=frm, receiver=to, ducats=ids, at=AT)


def test_transfer_moves_all_ducats_and_gets_the_next_seq() -> None:
    b = batch({1: "a", 2: "a"}, last_seq=41, balances={"a": 5, "b": 1})
    result = move(b, "t1", "a", "b", [1, 2])
    assert result == Accepted(seq=42, impact=transfer_impact(2), from_balance=3, to_balance=3)
    assert b.changed_balances == {"a", "b"}
    assert b.holders == {1: "b", 2: "b"}
    assert {d: (c.holder, c.transfer_count, c.last_seq) for d, c in b.changes.items()} == {
        1: ("b", 1, 42), 2: ("b", 1, 42)}


def test_transfer_is_all_or_nothing() -> None:
    b = batch({1: "a", 2: "c"})
    result = move(b, "t1", "a", "b", [1, 2])
    assert isinstance(result, Rejected) and result.reason is RejectReason.NOT_HOLDER and result.ducats == (2,)
    assert b.holders == {1: "a", 2: "c"} and not b.changes and b.last_seq == 0


def test_rules_apply_in_the_documented_order() -> None:
    b = batch({1: "a", 2: "c"})
    assert move(b, "t1", "a", "a", [1, 1, 9]).reason is RejectReason.SELF_TRANSFER  # type: ignore[union-attr]
    assert move(b, "t1", "a", "b", [1]).reason is RejectReason.DUPLICATE_TRANSACTION  # type: ignore[union-attr]
    assert move(b, "t2", "a", "b", [1, 1, 9]).reason is RejectReason.DUPLICATE_DUCAT  # type: ignore[union-attr]
    assert move(b, "t3", "a", "b", [9, 2]).reason is RejectReason.UNKNOWN_DUCAT  # type: ignore[union-attr]
    assert move(b, "t4", "a", "b", [2]).reason is RejectReason.NOT_HOLDER  # type: ignore[union-attr]


def test_a_rejected_transaction_id_is_consumed() -> None:
    b = batch({1: "a"})
    assert isinstance(move(b, "t1", "a", "a", [1]), Rejected)
    again = move(b, "t1", "a", "b", [1])  # now valid, but the id was already used
    assert isinstance(again, Rejected) and again.reason is RejectReason.DUPLICATE_TRANSACTION
    assert b.holders == {1: "a"}


def test_chained_transfers_in_one_batch_see_each_other() -> None:
    b = batch({1: "a"})
    assert isinstance(move(b, "t1", "a", "b", [1]), Accepted)
    assert isinstance(move(b, "t2", "b", "c", [1]), Accepted)
    assert b.changes[1].holder == "c" and b.changes[1].transfer_count == 2 and b.changes[1].last_seq == 2


def test_mint_materialises_only_referenced_ducats_and_detects_conflicts() -> None:
    b = batch(referenced=[5_000_001, 5_000_003, 7_000_001])
    assert b.apply_mint(mint_id="m5", lo=5_000_001, hi=5_000_010, holder="treasury", at=AT) == (MintOutcome.APPLIED, 1)
    assert b.balances == {"treasury": 10}
    assert b.holders == {5_000_001: "treasury", 5_000_003: "treasury"}
    assert b.apply_mint(mint_id="m5", lo=5_000_001, hi=5_000_010, holder="x", at=AT) == (MintOutcome.REDELIVERED, 0)
    assert b.apply_mint(mint_id="m5b", lo=5_000_010, hi=5_000_020, holder="x", at=AT) == (MintOutcome.CONFLICT, 0)
    assert isinstance(move(b, "t1", "treasury", "a", [5_000_003]), Accepted)


def test_mint_over_existing_ducats_is_a_conflict() -> None:
    b = batch(taken_mint_ids={"m1"})
    assert b.apply_mint(mint_id="m1", lo=1, hi=2, holder="t", at=AT) == (MintOutcome.CONFLICT, 0)


def test_impact_is_logarithmic_and_bounded() -> None:
    assert transfer_impact(0) == 0.0
    assert 0 < transfer_impact(1) < transfer_impact(10) < transfer_impact(10_000) == 1.0


def test_event_times_the_schema_admits_but_no_clock_can_show_are_dead_letters() -> None:
    assert event_time("2026-11-26t12:00:00z") == dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)
    assert event_time("2026-11-26T13:30:00.1234567+01:30").microsecond == 123456  # digits past 6 dropped
    for bad in ("2026-02-30T10:00:00Z", "2026-11-26T12:00:60Z"):
        with pytest.raises(InvalidEvent) as err:
            event_time(bad)
        assert err.value.reason.value == "schema_violation"
