"""Holder-to-holder edges (ducats.domain.network): the rule the edges sink follows,
and their count in the partition record, with a plain dict standing in for the
Faust table. No services (the sink itself: tests/integration/test_edges_sink.py)."""
from __future__ import annotations

from typing import Any, cast

from faust.types import TableT

from ducats.domain.metrics import PartitionMetrics, apply
from ducats.domain.network import UNKNOWN_REGION, Edge, edge_key, fold_edges, region_of
from sinks.postgres.edges import Network
from streams.metrics import fold_partition

TREASURY = frozenset({"treasury"})


def ts(second: int) -> str:
    return f"2026-11-26T12:00:{second:02d}+00:00"


def transfer(seq: int, frm: str, to: str, n: int) -> dict[str, Any]:
    return {"seq": seq, "transactionId": f"t{seq}", "timestamp": ts(seq), "from": frm, "to": to,
            "ducatCount": n, "consciousnessImpact": 0.1, "fromBalance": 100, "toBalance": 100 + n}


def mint(seq: int, holder: str, n: int) -> dict[str, Any]:
    return {"seq": seq, "mintId": f"m{seq}", "batch": seq, "firstSeq": 1, "count": n, "holder": holder,
            "timestamp": ts(seq), "holderBalance": n}


def test_an_edge_key_reads_from_arrow_to() -> None:
    assert edge_key("alice", "bob") == "alice\u2192bob"
    assert edge_key("bob", "alice") != edge_key("alice", "bob")   # directed


def test_transfers_fold_into_weighted_directed_edges() -> None:
    edges: dict[str, Edge] = {}
    changed = fold_edges(edges, [mint(1, "alice", 50), transfer(2, "alice", "bob", 3),
                                 transfer(3, "bob", "alice", 1), transfer(4, "alice", "bob", 5)])
    assert changed == {"alice\u2192bob", "bob\u2192alice"}
    assert edges == {
        "alice\u2192bob": Edge(weight=8, transfers=2, first_seq=2, last_seq=4, last_ts=ts(4)),
        "bob\u2192alice": Edge(weight=1, transfers=1, first_seq=3, last_seq=3, last_ts=ts(3)),
    }


def test_mints_make_no_edges() -> None:
    edges: dict[str, Edge] = {}
    assert fold_edges(edges, [mint(1, "alice", 50), mint(2, "bob", 5)]) == set()
    assert edges == {}


def test_a_redelivered_transfer_is_skipped_by_the_edges_last_seq() -> None:
    edges: dict[str, Edge] = {}
    first = [transfer(1, "a", "b", 2), transfer(2, "a", "c", 4), transfer(3, "a", "b", 1)]
    fold_edges(edges, first)
    before = {k: Edge(**v.to_dict()) for k, v in edges.items()}
    assert fold_edges(edges, first) == set()
    assert fold_edges(edges, list(reversed(first))) == set()
    assert edges == before
    # A replay that overlaps: seq 3 again, then two new transfers.
    assert fold_edges(edges, [first[2], transfer(4, "a", "c", 7), transfer(5, "a", "b", 10)]) == {
        "a\u2192b", "a\u2192c"}
    assert edges["a\u2192b"] == Edge(weight=13, transfers=3, first_seq=1, last_seq=5, last_ts=ts(5))
    assert edges["a\u2192c"] == Edge(weight=11, transfers=2, first_seq=2, last_seq=4, last_ts=ts(4))


def test_the_guard_is_per_edge_not_global() -> None:
    """An edge that has not seen a seq yet takes it, whatever other edges have seen."""
    edges = {"a\u2192b": Edge(weight=5, transfers=1, first_seq=9, last_seq=9, last_ts=ts(9))}
    assert fold_edges(edges, [transfer(4, "c", "d", 2), transfer(8, "a", "b", 1)]) == {"c\u2192d"}
    assert edges["c\u2192d"] == Edge(weight=2, transfers=1, first_seq=4, last_seq=4, last_ts=ts(4))
    assert edges["a\u2192b"].transfers == 1


def test_edges_survive_a_round_trip_through_the_table_between_batches() -> None:
    """The table holds plain dicts; a batch loads, folds and stores them back."""
    table: dict[str, dict[str, Any]] = {}

    def run_batch(events: list[dict[str, Any]]) -> set[str]:
        edges = {edge_key(e["from"], e["to"]): Edge.from_dict(table.get(edge_key(e["from"], e["to"])))
                 for e in events if "transactionId" in e}
        changed = fold_edges(edges, events)
        table.update({k: edges[k].to_dict() for k in changed})
        return changed

    batch = [transfer(1, "a", "b", 2), transfer(2, "b", "a", 3)]
    assert run_batch(batch) == {"a\u2192b", "b\u2192a"}
    assert run_batch(batch) == set()   # redelivered after a restart: the stored last_seq skips it
    assert run_batch([transfer(3, "a", "b", 4)]) == {"a\u2192b"}
    assert table["a\u2192b"] == {"weight": 6, "transfers": 2, "first_seq": 1, "last_seq": 3, "last_ts": ts(3)}
    assert Edge.from_dict(None) == Edge()


def test_the_partition_record_counts_an_edge_at_the_transfer_that_created_it() -> None:
    pm = PartitionMetrics()
    events = [transfer(1, "a", "b", 1), transfer(2, "a", "b", 1), transfer(3, "a", "c", 1)]
    new_edges = frozenset({1, 3})   # by hand: a->b is new at seq 1, a->c at seq 3
    assert [apply(pm, e, TREASURY, new_edges) for e in events] == [True] * 3
    assert pm.edges == 2
    assert not apply(pm, events[0], TREASURY, new_edges)   # a redelivery counts no edge twice
    assert pm.edges == 2


class FakeTable:
    """What fold_partition uses of a Faust table: its data and the changelog sends."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.sent: list[tuple[int, str, dict[str, Any]]] = []

    def send_changelog(self, partition: int, key: str, value: dict[str, Any]) -> None:
        self.sent.append((partition, key, value))


def fold(partition: int, events: list[dict[str, Any]], metrics: FakeTable, new_edges: set[int]) -> int:
    """Fold as the worker does, with the edges sink's answer given: which transfers created an edge."""
    folded = fold_partition(partition=partition, events=events, offset=0, treasury=TREASURY,
                            metrics_table=cast(TableT, metrics), network=Network(new_seqs=frozenset(new_edges)))
    return folded.fresh


def test_a_batch_counts_each_new_edge_once_and_writes_its_record_once() -> None:
    metrics = FakeTable()
    first = [mint(1, "a", 100), transfer(2, "a", "b", 1), transfer(3, "a", "c", 2), transfer(4, "a", "b", 3)]
    assert fold(2, first, metrics, {2, 3}) == 4
    assert metrics.data["p2"]["edges"] == 2 and metrics.data["p2"]["seq"] == 4
    assert [(p, key) for p, key, _ in metrics.sent] == [(2, "p2")]

    second = [transfer(5, "a", "b", 1), transfer(6, "a", "d", 1), transfer(7, "b", "a", 1)]
    assert fold(2, second, metrics, {6, 7}) == 3
    assert metrics.data["p2"]["edges"] == 4   # a->d and b->a are new; a->b was known
    sent = len(metrics.sent)
    assert fold(2, first + second, metrics, {2, 3, 6, 7}) == 0   # the whole log redelivered
    assert metrics.data["p2"]["edges"] == 4 and metrics.data["p2"]["transfers"] == 6
    assert len(metrics.sent) == sent   # and nothing written


def test_regions_are_short_strings_lower_cased_and_anything_else_is_unknown() -> None:
    assert region_of("EU") == "eu" and region_of(" latam ") == "latam"
    assert [region_of(v) for v in (None, "", "   ", 7, ["eu"], "x" * 33)] == [UNKNOWN_REGION] * 6
    assert region_of("x" * 32) == "x" * 32
