"""The ducats:// consumer commits past the commit markers of a transactional topic
(streams/transport.py, faust-streaming#606), and never past a record in flight;
a seek to an offset not known yet starts the partition (the recovery race).

Faust's own offset bookkeeping (``_add_gap`` as its fetch loop calls it, then
``_new_offset``) runs on a consumer object built without the rest of Faust."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from intervaltree import IntervalTree

from faust.transport.drivers import aiokafka as faust_aiokafka
from streams.transport import Consumer

TP = "accepted-0"


def bookkeeping(cls: type[Any]) -> Any:
    consumer = object.__new__(cls)  # only the offset bookkeeping, no Faust app behind it
    consumer._acked, consumer._acked_index = defaultdict(list), defaultdict(set)
    consumer._gap, consumer._committed_offset = defaultdict(IntervalTree), defaultdict(lambda: None)
    return consumer


async def read(consumer: Any, offsets: list[int], last: int | None) -> int | None:
    """What Faust's fetch loop does per record before handing it on: note the gap since the last one."""
    for offset in offsets:
        if last is not None and offset - last > 1 and last:
            await consumer._add_gap(TP, last + 1, offset)
        last = offset
    return last


def ack(consumer: Any, offsets: list[int]) -> None:
    for offset in offsets:
        consumer._acked[TP].append(offset)
        consumer._acked_index[TP].add(offset)


def commit(consumer: Any) -> int | None:
    new = consumer._new_offset(TP)
    if new is not None:
        consumer._committed_offset[TP] = new
    return consumer._committed_offset[TP]  # type: ignore[no-any-return]


async def run(cls: type[Any], records: list[int], per_commit: int) -> list[int | None]:
    consumer, last, commits = bookkeeping(cls), None, []
    for i in range(0, len(records), per_commit):
        chunk = records[i:i + per_commit]
        last = await read(consumer, chunk, last)
        ack(consumer, chunk)
        commits.append(commit(consumer))
    return commits


# One record per transaction, then its commit marker: every other offset is a marker.
ONE_PER_TX = list(range(1, 400, 2))


def test_commits_follow_the_records_past_commit_markers() -> None:
    commits = asyncio.run(run(Consumer, ONE_PER_TX, per_commit=10))
    assert commits == [ONE_PER_TX[i + 9] + 1 for i in range(0, len(ONE_PER_TX), 10)]


def test_stock_faust_falls_behind_there() -> None:
    """Why the override exists: the stock consumer commits two offsets per commit."""
    commits = asyncio.run(run(faust_aiokafka.Consumer, ONE_PER_TX, per_commit=10))
    assert commits[-1] is not None and commits[-1] < 60 < ONE_PER_TX[-1]


def test_a_record_read_but_not_acked_is_never_committed() -> None:
    async def scenario() -> tuple[int | None, int | None]:
        consumer = bookkeeping(Consumer)
        last = await read(consumer, [1, 3, 5, 7], None)
        ack(consumer, [1, 3, 5])  # 7 is still in the agent's batch
        first = commit(consumer)
        await read(consumer, [9], last)
        ack(consumer, [7, 9])
        return first, commit(consumer)

    assert asyncio.run(scenario()) == (6, 10)


def test_a_seek_to_an_offset_not_known_yet_starts_the_partition() -> None:
    """Recovery seeks standby partitions that a rebalance added mid-recovery with offset None."""
    consumer, seeks = object.__new__(Consumer), []

    async def seek_wait(partitions: dict[str, int]) -> None:
        seeks.append(partitions)

    consumer._thread = SimpleNamespace(seek_wait=seek_wait)  # type: ignore[assignment]
    asyncio.run(consumer.seek_wait({"changelog-0": None, "changelog-1": 41}))
    assert seeks == [{"changelog-0": 0, "changelog-1": 41}]
