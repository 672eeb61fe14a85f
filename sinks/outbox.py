"""Publishes the ledger's outbox to Kafka exactly once.

The ledger sink writes every outgoing record (accepted, rejected, dead letter)
into the ``outbox`` table in the same transaction as the data. This publisher
sends them in id order inside Kafka transactions, each record carrying its
outbox id in the ``outbox-id`` header, then deletes what it sent.

Exactly once: a crash before the Kafka commit leaves an aborted transaction
(invisible to read_committed readers) and the rows still in the outbox; a crash
after it leaves rows that Kafka already has. At start-up the publisher reads
the committed tail of each output partition, takes the highest outbox id found
there, and deletes the rows up to it before sending anything. Batches commit in
id order, so every id below that one is published too. The fixed
transactional id fences any older publisher.

Subscribers must read these topics with isolation.level=read_committed.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ducats.errors import ServiceUnavailable
from ducats.settings import Settings

HEADER = "outbox-id"
PUBLISH_BATCH = 20_000
SCAN_TIMEOUT = 60.0


class OutboxPublisher:
    def __init__(self, *, settings: Settings, partitions: Sequence[TopicPartition]) -> None:
        self.settings = settings
        self.partitions = list(partitions)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, transactional_id=f"{settings.app_id}-ledger-outbox",
            enable_idempotence=True, acks="all", linger_ms=5, max_batch_size=1 << 20,
            max_request_size=8 << 20)

    async def start(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await self.producer.start()  # InitProducerId: fences and aborts an older publisher's transaction
        published = await self.last_published_id()
        await conn.execute("DELETE FROM outbox WHERE id <= %s", [published])
        await conn.commit()

    async def stop(self) -> None:
        await self.producer.stop()

    async def publish_pending(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """Send everything in the outbox; return how many records went out."""
        sent = 0
        while True:
            cur = await conn.execute("SELECT id, topic, key, value FROM outbox ORDER BY id LIMIT %s", [PUBLISH_BATCH])
            rows = await cur.fetchall()
            if not rows:
                await conn.commit()
                return sent
            async with self.producer.transaction():
                for oid, topic, key, value in rows:
                    await self.producer.send(topic, bytes(value), key=None if key is None else bytes(key),
                                             headers=[(HEADER, str(oid).encode())])
            await conn.execute("DELETE FROM outbox WHERE id <= %s", [rows[-1][0]])
            await conn.commit()
            sent += len(rows)

    async def last_published_id(self) -> int:
        """Highest outbox id in the committed tails of the output topics (0 if none)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap,
                                    isolation_level="read_committed", enable_auto_commit=False)
        await consumer.start()
        try:
            tps = self.partitions
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            best = 0
            for tp in tps:
                best = max(best, await _last_id_in(consumer, tp, ends[tp]))
            return best
        finally:
            await consumer.stop()


async def _last_id_in(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> int:
    """The outbox id of the last committed record of ``tp``: scan back in growing windows."""
    window, stop = 64, end
    deadline = time.monotonic() + SCAN_TIMEOUT
    while stop > 0:
        start = max(0, stop - window)
        consumer.seek(tp, start)
        found = 0
        while await consumer.position(tp) < stop:
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"could not read the tail of {tp.topic}[{tp.partition}]")
            for rec in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                if rec.offset < stop:
                    found = max(found, _header_id(rec.headers))
        if found:
            return found
        stop, window = start, window * 4
    return 0


def _header_id(headers: Sequence[tuple[str, bytes]]) -> int:
    for name, value in headers:
        if name == HEADER:
            return int(value)
    return 0
