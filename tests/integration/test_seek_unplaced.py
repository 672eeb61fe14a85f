"""After a table recovery Faust seeks every partition to its committed offset, and
aiokafka moves only those that have one: a partition with no commit yet stays
where the fetcher was, past the records Faust dropped while recovering, and they
are never processed (streams/transport.py). The ducats:// consumer thread seeks
such a partition to its start, and a partition whose read position the app's
state keeps to that position. A real broker and a real group."""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from ducats.kafka import make_producer
from ducats.settings import Settings
from streams.transport import seek_to_committed


async def test_a_partition_without_a_commit_goes_back_to_its_start(
        base_settings: Settings, topic_factory: Callable[..., Awaitable[str]]) -> None:
    stream, changelog = await topic_factory(partitions=1), await topic_factory(partitions=1)
    producer = make_producer(base_settings)
    await producer.start()
    try:
        for topic in (stream, changelog):
            for i in range(5):
                await producer.send(topic, b"v%d" % i, partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=base_settings.kafka_bootstrap, group_id=f"{stream}-group",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(stream, 0), TopicPartition(changelog, 0)]
        consumer.assign(tps)
        fetched = 0
        while fetched < 10:  # what Faust's fetcher read, and dropped, during recovery
            fetched += sum(len(r) for r in (await consumer.getmany(timeout_ms=1000)).values())
        assert [await consumer.position(tp) for tp in tps] == [5, 5]

        await consumer.seek_to_committed()  # aiokafka alone: nothing committed, nothing moves
        assert [await consumer.position(tp) for tp in tps] == [5, 5]

        committed = await seek_to_committed(consumer, skip={changelog})
        assert committed == {tps[0]: None, tps[1]: None}
        assert [await consumer.position(tp) for tp in tps] == [0, 5]
        await consumer.commit({tps[0]: 3})
        consumer.seek(tps[0], 5)
        await seek_to_committed(consumer, skip={changelog})  # a committed partition goes to its commit
        assert await consumer.position(tps[0]) == 3

        # A position the app's state keeps wins over the commit, behind it or ahead of it,
        # and is what Faust is told the partition now reads from.
        for kept in (1, 4):
            consumer.seek(tps[0], 5)
            placed = await seek_to_committed(consumer, skip={changelog},
                                             positions=lambda tps_: {tp: kept for tp in tps_ if tp.topic == stream})
            assert placed == {tps[0]: kept, tps[1]: None}
            assert [await consumer.position(tp) for tp in tps] == [kept, 5]
    finally:
        await consumer.stop()
