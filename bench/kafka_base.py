"""Kafka baselines: raw aiokafka on the same messages the pipeline gets.

*produce*: the project's idempotent producer (acks=all, ``make_producer``)
sends every message to a private topic shaped like the pipeline's input topic,
then one flush; timed until every delivery is confirmed.
*consume + decode*: a read_committed consumer with the ledger's fetch sizes and
batch size reads them back from the start and ``orjson.loads`` each value.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import orjson
from aiokafka import AIOKafkaConsumer

from bench.deadline import Deadline
from bench.env import BenchEnv
from bench.errors import BenchError
from ducats.kafka import TopicSpec, make_producer, topic_partitions
from ducats.upstream import MAX_REQUEST_BYTES

Message = tuple[bytes, bytes]  # key, value


async def baseline_topic(env: BenchEnv, like: str, name: str) -> str:
    """A private topic with the partitions and config of the pipeline topic ``like``."""
    from streams.topics import pipeline_topics

    spec = next(s for s in pipeline_topics(env.settings) if s.name == like)
    topic = f"{env.settings.topic_prefix}.baseline.{name}"
    await env.add_topics([TopicSpec(name=topic, partitions=spec.partitions, config=spec.config)])
    return topic


async def produce(env: BenchEnv, topic: str, messages: Sequence[Message]) -> float:
    """Seconds to send ``messages`` and have every one acknowledged."""
    producer = make_producer(env.settings, max_request_size=MAX_REQUEST_BYTES)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await producer.flush()
        results = await asyncio.gather(*futures, return_exceptions=True)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise BenchError(f"Kafka refused {len(failed)} baseline messages: {failed[0]!r}")
    return elapsed


async def consume_decode(env: BenchEnv, topic: str, count: int, *, deadline: Deadline,
                         on_read: Callable[[int], None] | None = None) -> float:
    """Seconds to read ``count`` messages of ``topic`` from the start and decode each."""
    s = env.settings
    consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed", max_partition_fetch_bytes=16 << 20,
                                fetch_max_bytes=64 << 20)
    await consumer.start()
    try:
        tps = await topic_partitions(s, [topic])
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        started, read, decoded = time.perf_counter(), 0, 0
        while read < count:
            deadline.check(f"reading {topic}")
            for records in (await consumer.getmany(timeout_ms=200, max_records=s.ledger_batch)).values():
                for rec in records:
                    decoded += orjson.loads(rec.value) is not None
                read += len(records)
            if on_read is not None:
                on_read(read)
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
    if decoded != count:
        raise BenchError(f"read {decoded} messages from {topic}, expected {count}")
    return elapsed
