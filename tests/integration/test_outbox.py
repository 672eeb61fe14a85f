"""The outbox publisher's exactly-once recovery, crash by crash."""
from __future__ import annotations

import psycopg
from aiokafka import AIOKafkaProducer

from ducats.kafka import topic_partitions
from ducats.settings import Settings
from sinks.outbox import HEADER, OutboxPublisher
from tests.fixtures.ledger import read_all


async def publisher_for(s: Settings) -> OutboxPublisher:
    return OutboxPublisher(settings=s, partitions=await topic_partitions(s, [s.topic_accepted, s.topic_dlq]))


def add_rows(conn: psycopg.AsyncConnection, s: Settings, ids: range) -> list[tuple[object, ...]]:  # type: ignore[type-arg]
    return [(i, s.topic_accepted if i % 2 else s.topic_dlq, f"k{i}".encode(), f"v{i}".encode()) for i in ids]


async def insert(conn: psycopg.AsyncConnection, rows: list[tuple[object, ...]]) -> None:  # type: ignore[type-arg]
    async with conn.cursor() as cur:
        await cur.executemany("INSERT INTO outbox (id, topic, key, value) VALUES (%s, %s, %s, %s)", rows)
    await conn.commit()


async def published(s: Settings) -> list[bytes]:
    records = await read_all(s, s.topic_accepted) + await read_all(s, s.topic_dlq)
    return sorted(r.value for r in records)


async def test_outbox_is_published_once_across_crashes(ledger_settings: Settings) -> None:
    s = ledger_settings
    conn = await psycopg.AsyncConnection.connect(s.database_url)
    try:
        first = add_rows(conn, s, range(1, 4))
        await insert(conn, first)
        pub = await publisher_for(s)
        await pub.start(conn)
        assert await pub.publish_pending(conn) == 3
        await pub.stop()
        assert await published(s) == [b"v1", b"v2", b"v3"]

        # Crash after the Kafka commit, before the DELETE: the rows are back.
        await insert(conn, first)
        pub = await publisher_for(s)
        await pub.start(conn)  # finds id 3 in the topic tails and drops rows 1..3
        assert await pub.publish_pending(conn) == 0
        await pub.stop()

        # Crash inside a Kafka transaction: sent but never committed.
        second = add_rows(conn, s, range(4, 6))
        await insert(conn, second)
        zombie = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, enable_idempotence=True,
                                  transactional_id=f"{s.app_id}-ledger-outbox")
        await zombie.start()
        await zombie.begin_transaction()
        for oid, topic, key, value in second:
            await zombie.send_and_wait(topic, value, key=key, headers=[(HEADER, str(oid).encode())])  # type: ignore[arg-type]
        pub = await publisher_for(s)
        await pub.start(conn)  # fences the zombie; its open transaction is aborted
        assert await pub.publish_pending(conn) == 2
        await pub.stop()
        await zombie.stop()
    finally:
        await conn.close()
    assert await published(s) == [b"v1", b"v2", b"v3", b"v4", b"v5"]
