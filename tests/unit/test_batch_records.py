"""The batch records of the accepted log (sinks/postgres/ledger.py): each is a JSON
array of the accepted events it carries, in order, none lost or split, within the
size bound; and the ledger picks the partition the producer would pick."""
from __future__ import annotations

import orjson
from aiokafka.partitioner import DefaultPartitioner

from ducats.kafka import key_partition
from sinks.postgres.ledger import batch_records


def events(n: int, pad: int = 10) -> list[bytes]:
    return [orjson.dumps({"seq": i, "pad": "x" * pad}) for i in range(1, n + 1)]


def test_every_event_once_in_order_and_each_record_within_the_bound() -> None:
    values = events(500, pad=100)
    records = batch_records(values, limit=4096)
    assert len(records) > 1
    assert all(len(r) <= 4096 + 2 for r in records)
    assert [e for r in records for e in orjson.loads(r)] == [orjson.loads(v) for v in values]


def test_one_record_when_it_fits_and_an_oversize_event_still_goes_alone() -> None:
    assert [orjson.loads(r) for r in batch_records(events(3))] == [[orjson.loads(v) for v in events(3)]]
    big = orjson.dumps({"seq": 9, "pad": "y" * 10_000})
    records = batch_records([*events(2), big, *events(1)], limit=1000)
    assert [len(orjson.loads(r)) for r in records] == [2, 1, 1]
    assert batch_records([]) == []


def test_the_partition_is_the_producers() -> None:
    partitions = list(range(4))
    for key in [b"alice", b"bob", b"treasury", "h\u00e9lo".encode(), b"holder-00042", b""]:
        assert key_partition(key, 4) == DefaultPartitioner()(key, partitions, partitions)
