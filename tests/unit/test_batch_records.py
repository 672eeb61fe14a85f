"""The batch records of the accepted log (schemas/batches.py): each carries its
events in order, none lost or split, within the size bound; the records of a
partition form a chain a reader checks; and the ledger picks the partition the
producer would pick. Then the worker's side (streams/metrics.py, ChainReader):
what continues a chain is folded, a redelivery is not, and a gap is skipped and
makes the partition be read again from after its last folded record."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import faust
import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from ducats.kafka import key_partition
from schemas.batches import Chain, Link, decode, encode
from streams.metrics import REREAD_EVERY, ChainReader


def events(n: int, pad: int = 10, start: int = 1) -> list[tuple[int, bytes]]:
    return [(i, orjson.dumps({"seq": i, "pad": "x" * pad})) for i in range(start, start + n)]


def test_every_event_once_in_order_and_each_record_within_the_bound() -> None:
    values = events(500, pad=100)
    records, head = encode(values, prev=0, limit=4096)
    assert len(records) > 1 and head == 500
    assert all(len(r) <= 4096 + 40 for r in records)
    assert [e for r in records for e in decode(r).events] == [orjson.loads(v) for _, v in values]


def test_the_records_chain_each_to_the_one_before() -> None:
    records, head = encode(events(500, pad=100, start=11), prev=7, limit=4096)
    decoded = [decode(r) for r in records]
    assert decoded[0].prev == 7
    assert [d.prev for d in decoded[1:]] == [d.last for d in decoded[:-1]]
    assert head == decoded[-1].last == 510


def test_one_record_when_it_fits_and_an_oversize_event_still_goes_alone() -> None:
    records, _ = encode(events(3), prev=0)
    assert [decode(r).events for r in records] == [[orjson.loads(v) for _, v in events(3)]]
    big = (9, orjson.dumps({"seq": 9, "pad": "y" * 10_000}))
    records, head = encode([*events(2), big, *events(1, start=10)], prev=0, limit=1000)
    assert [len(decode(r).events) for r in records] == [2, 1, 1] and head == 10
    assert encode([], prev=5) == ([], 5)


def test_a_chain_continues_per_partition() -> None:
    chain = Chain({1: 40})
    a = chain.records(1, events(2, start=41))
    b = chain.records(2, events(1, start=43))
    c = chain.records(1, events(1, start=44))
    assert [decode(r).prev for r in (*a, *b, *c)] == [40, 0, 42]
    assert chain.heads == {1: 44, 2: 43}


@pytest.mark.parametrize(("prev", "last", "folded", "link"), [
    (10, 20, 10, Link.NEXT),    # continues
    (0, 20, 10, Link.NEXT),     # a chain that started after the partition had events: by seq
    (10, 20, 20, Link.SEEN),    # a redelivery
    (10, 20, 25, Link.SEEN),
    (12, 20, 10, Link.GAP),     # the record ending at 12 was never folded
])
def test_how_a_record_links_to_what_is_folded(prev: int, last: int, folded: int, link: Link) -> None:
    record = decode(b'{"prev":%d,"events":[{"seq":%d}]}' % (prev, last))
    assert record.link(folded) is link


def test_the_partition_is_the_producers() -> None:
    partitions = list(range(4))
    for key in [b"alice", b"bob", b"treasury", "h\u00e9lo".encode(), b"holder-00042", b""]:
        assert key_partition(key, 4) == DefaultPartitioner()(key, partitions, partitions)


@dataclass
class Message:
    partition: int
    offset: int


@dataclass
class Event:
    message: Message
    value: bytes


class FakeConsumer:
    def __init__(self) -> None:
        self.sought: list[dict[Any, int]] = []

    async def seek_wait(self, partitions: dict[Any, int]) -> None:
        self.sought.append(dict(partitions))


class FakeApp:
    def __init__(self) -> None:
        self.consumer = FakeConsumer()


class FakeTable:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data


def record(partition: int, offset: int, prev: int, seqs: range) -> Event:
    return Event(Message(partition, offset), encode([(s, orjson.dumps({"seq": s})) for s in seqs], prev=prev)[0][0])


def reader(data: dict[str, Any]) -> tuple[ChainReader, FakeConsumer]:
    app = FakeApp()
    return ChainReader(app=cast(faust.App, app), topic="t", metrics_table=cast(Any, FakeTable(data))), app.consumer


async def test_the_reader_folds_what_continues_skips_redeliveries_and_rereads_after_a_gap() -> None:
    r, consumer = reader({"p0": {"seq": 10, "offset": 6}, "p1": {"seq": 5, "offset": 2}})
    batch = [record(0, 6, 4, range(8, 11)),      # seen: ends at 10
             record(0, 8, 10, range(11, 14)),    # next
             record(1, 4, 9, range(10, 12)),     # gap: the record ending at 9 was never folded
             record(0, 10, 13, range(14, 15)),   # next
             record(1, 6, 11, range(12, 13))]    # after the gap: not folded either
    parts, gaps = r.sort(cast(Any, batch))
    assert list(parts) == [0] and [e["seq"] for e in parts[0].events] == [11, 12, 13, 14]
    assert (parts[0].offset, parts[0].folded) == (10, 14)
    assert gaps == {1: 4}
    await r.reread(dict(gaps), now=100.0)
    assert [{tp.partition: o for tp, o in s.items()} for s in consumer.sought] == [{1: 3}]  # after offset 2
    await r.reread(dict(gaps), now=100.0 + REREAD_EVERY / 2)    # records already in flight: no second seek
    assert len(consumer.sought) == 1
    await r.reread(dict(gaps), now=100.0 + REREAD_EVERY)        # still in a gap later: seek again
    assert len(consumer.sought) == 2


async def test_a_partition_stays_in_a_gap_until_its_chain_continues_and_the_timer_seeks_it_again() -> None:
    r, consumer = reader({"p1": {"seq": 5, "offset": 2}, "p2": {"seq": 7, "offset": 0}})
    _, gaps = r.sort(cast(Any, [record(1, 6, 9, range(10, 11)), record(2, 4, 8, range(9, 10))]))
    await r.reread(dict(gaps), now=10.0)
    assert set(r.gapped) == {1, 2} and len(consumer.sought) == 2
    await r.retry(10.0 + REREAD_EVERY / 2, assigned={1, 2})   # too soon
    assert len(consumer.sought) == 2
    # The reread delivers partition 1's missing record: it leaves the gap; 2 is revoked.
    parts, gaps = r.sort(cast(Any, [record(1, 4, 5, range(6, 10))]))
    assert list(parts) == [1] and not gaps and set(r.gapped) == {2}
    await r.retry(10.0 + REREAD_EVERY, assigned={1})
    assert not r.gapped and len(consumer.sought) == 2
    # No record arrives after a seek (Faust dropped the reread ones): the timer seeks again.
    _, gaps = r.sort(cast(Any, [record(2, 4, 8, range(9, 10))]))
    await r.reread(dict(gaps), now=20.0)
    await r.retry(20.0 + REREAD_EVERY, assigned={2})
    assert [{tp.partition: o for tp, o in s.items()} for s in consumer.sought][-2:] == [{2: 1}, {2: 1}]


def test_the_read_positions_are_after_the_last_folded_records() -> None:
    r, _ = reader({"p0": {"seq": 10, "offset": 6}, "p2": {"seq": 3}})
    tps = [faust.types.TP("t", 0), faust.types.TP("t", 1), faust.types.TP("t", 2), faust.types.TP("other", 0)]
    assert r.positions(tps) == {faust.types.TP("t", 0): 7}
