"""streams.cascades.SeqMerger: the partitions' batch records back in seq order (seqs are
dense), repeats dropped, and per partition the offset a restart must read on from: the
record of its first event not yet handed out. No services."""
from __future__ import annotations

from typing import Any

from schemas.batches import BatchRecord
from streams.cascades import SeqMerger


def record(*seqs: int) -> BatchRecord:
    events: list[dict[str, Any]] = [{"seq": s, "transactionId": f"t{s}", "timestamp": "2026-11-26T12:00:00Z"}
                                    for s in seqs]
    return BatchRecord(prev=0, events=events)


def test_events_come_out_in_seq_order_only_when_the_next_one_is_there() -> None:
    m = SeqMerger(1, {0: 0, 1: 0})
    m.add(0, 0, record(1, 2, 5))
    assert [e["seq"] for e in m.ready()] == [1, 2]   # 3 is in partition 1, not read yet
    assert m.offsets() == {0: 0, 1: 0}               # record 0 of partition 0 still holds seq 5
    m.add(1, 0, record(3, 4))
    m.add(1, 1, record(6))
    assert [e["seq"] for e in m.ready()] == [3, 4, 5, 6]
    assert m.offsets() == {0: 1, 1: 2}               # everything handed out: read on after the records


def test_repeats_are_dropped_and_a_restart_skips_what_was_folded() -> None:
    m = SeqMerger(4, {0: 7})                         # restarted after seq 3
    m.add(0, 7, record(2, 3, 4))                     # a record partly folded before the crash
    m.add(0, 8, record(4, 5))                        # a ledger's record sent again
    assert [e["seq"] for e in m.ready()] == [4, 5]
    assert m.next == 6 and m.offsets() == {0: 9}
