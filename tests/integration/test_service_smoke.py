"""One smoke test per real service."""
from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import psycopg
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from ducats.kafka import make_producer
from ducats.settings import Settings


async def test_kafka_produce_and_consume_on_a_fresh_topic(
        base_settings: Settings, topic_factory: Callable[..., Awaitable[str]]) -> None:
    topic = await topic_factory(partitions=1)
    sent = [f"message-{i}".encode() for i in range(5)]
    producer = make_producer(base_settings)
    await producer.start()
    try:
        for value in sent:
            await producer.send(topic, value, key=b"k")
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=base_settings.kafka_bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        got: list[bytes] = []
        while len(got) < len(sent):
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, "no records came back from Kafka within 10 s"
            got += [rec.value for recs in batch.values() for rec in recs]
    finally:
        await consumer.stop()
    assert got == sent


def test_postgres_timescaledb_hypertable(database_factory: Callable[[], str]) -> None:
    with psycopg.connect(database_factory(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timescaledb")
        conn.execute("CREATE TABLE readings (ts timestamptz NOT NULL, value double precision)")
        conn.execute("SELECT create_hypertable('readings', by_range('ts', INTERVAL '1 day'))")
        conn.execute("INSERT INTO readings SELECT t, 1.0 FROM generate_series("
                     "'2026-01-01'::timestamptz, '2026-01-03', INTERVAL '1 hour') AS t")
        row = conn.execute("SELECT count(*) FROM timescaledb_information.chunks "
                           "WHERE hypertable_name = 'readings'").fetchone()
        assert row is not None and row[0] == 3  # one chunk per day: Jan 1, 2 and 3
        bucket = conn.execute("SELECT time_bucket('1 day', ts) b, count(*) FROM readings "
                              "GROUP BY b ORDER BY b LIMIT 1").fetchone()
        assert bucket is not None and bucket[1] == 24


async def test_redis_round_trip(redis_client: aioredis.Redis) -> None:
    key = f"test:{uuid.uuid4().hex}"
    async with redis_client.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"holder": "alice", "level": "0.5"})
        pipe.expire(key, 60)
        await pipe.execute()
    assert await redis_client.hgetall(key) == {b"holder": b"alice", b"level": b"0.5"}
    await redis_client.delete(key)
    assert await redis_client.exists(key) == 0
