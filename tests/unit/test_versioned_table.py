"""Table recovery keeps, per key, the value at the highest seq (streams.metrics.VersionedTable).

After a rebalance the memory store still holds the worker's own writes, some
of them newer than anything in the changelog yet; recovery applies the
changelog's records over them. Faust's rule (the last record wins) took a key
back to an older value, and the events folded in between were never counted."""
from __future__ import annotations

from typing import Any

import faust
from faust.events import Event
from faust.types import Message

from streams.metrics import MetricsTable


def app() -> faust.App:
    return faust.App("versioned-table-test", broker="memory://", store="memory://", autodiscover=False)


def records(a: faust.App, *kvs: tuple[str, dict[str, Any] | None]) -> list[Event]:
    return [Event(a, k, v, None, Message("t-changelog", 0, offset, 0.0, 0, None, k.encode(),
                                         None if v is None else b"{}", None))
            for offset, (k, v) in enumerate(kvs)]


def test_a_changelog_record_older_than_the_table_is_not_applied() -> None:
    a = app()
    table = MetricsTable(a, name="partition-metrics")
    table.data["p0"] = {"seq": 50, "events": 50}  # written by this worker, not yet in Kafka
    table.apply_changelog_batch(records(a, ("p0", {"seq": 40, "events": 40}), ("p1", {"seq": 7, "events": 7})))
    assert dict(table.data) == {"p0": {"seq": 50, "events": 50}, "p1": {"seq": 7, "events": 7}}


def test_newer_records_apply_and_the_highest_in_a_batch_wins() -> None:
    a = app()
    table = MetricsTable(a, name="partition-metrics")
    table.data["a→b"] = {"seq": 10, "transfers": 1}
    table.apply_changelog_batch(records(a, ("a→b", {"seq": 30, "transfers": 3}),
                                        ("a→b", {"seq": 20, "transfers": 2}),  # a late older record
                                        ("c→d", {"seq": 5, "transfers": 1}),
                                        ("c→d", {"seq": 5, "transfers": 1})))  # the same, sent twice
    assert dict(table.data) == {"a→b": {"seq": 30, "transfers": 3}, "c→d": {"seq": 5, "transfers": 1}}


def test_a_deletion_still_deletes() -> None:
    a = app()
    table = MetricsTable(a, name="partition-metrics")
    table.apply_changelog_batch(records(a, ("a→b", {"seq": 3}), ("a→b", None)))
    assert "a→b" not in table.data
