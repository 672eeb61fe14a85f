"""Publishes the ledger's outbox to Kafka exactly once.

The ledger sink writes every outgoing record (accepted, rejected, dead letter)
into the ``outbox`` table in the same transaction as the data. This publisher
sends them in id order inside Kafka transactions, each record carrying its
outbox id in the ``outbox-id`` header, to the partition the row names (none:
the producer's partitioner picks one by key), then deletes what it sent.

Exactly once: a crash before the Kafka commit leaves an aborted transaction
(invisible to read_committed readers) and the rows still in the outbox; a crash
after it leaves rows that Kafka already has. At start-up the publisher first
fences every older publisher (InitProducerId on the fixed transactional id: an
older one's open transaction is aborted and it can commit nothing more), then
reads the committed tail of each output partition, takes the highest outbox id
found there, and deletes the rows up to it before sending anything. Batches
commit in id order, so every id below that one is published too.

Outages: every Kafka call is bounded (ducats.kafka.within) and every failure is
the project's error. After any error the publisher is finished: stop it and
start a new one, whose InitProducerId aborts whatever this one left open (a
transaction cut off by a dead broker may be neither committed nor aborted yet).

Subscribers must read these topics with isolation.level=read_committed.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka import errors as ke

from ducats.connect import pg_errors
from ducats.errors import ServiceUnavailable
from ducats.kafka import REQUEST_TIMEOUT_MS, kafka_errors, within
from ducats.settings import Settings
from sinks.errors import LeadershipLost

T = TypeVar("T")
HEADER = "outbox-id"
PUBLISH_BATCH = 20_000
SCAN_TIMEOUT = 60.0
CALL_TIMEOUT = 60.0  # seconds for one Kafka step (a transaction of PUBLISH_BATCH records takes about 1 s)
STOP_TIMEOUT = 10.0
# A send the broker has not acknowledged in this time fails the transaction (a broker on loopback
# answers in milliseconds): the ledger notices a broker that went away within seconds, and says so,
# instead of stalling for aiokafka's 40 s. The failed transaction is redone by a new producer.
PRODUCER_REQUEST_TIMEOUT_MS = 5_000
# The producer's transaction is gone or in an unknown state (a broker restarted under it, the
# coordinator aborted it): a new producer (InitProducerId) recovers. Not the publisher's to retry.
_LOST_TRANSACTION: tuple[type[BaseException], ...] = (
    ke.OutOfOrderSequenceNumber, ke.UnknownProducerId, ke.InvalidTxnState, ke.InvalidProducerIdMapping,
    ke.ConcurrentTransactions, ke.TransactionCoordinatorFenced, ke.IllegalStateError, ke.ProducerClosed)


class OutboxPublisher:
    def __init__(self, *, settings: Settings, partitions: Sequence[TopicPartition]) -> None:
        self.settings = settings
        self.partitions = list(partitions)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, transactional_id=f"{settings.app_id}-ledger-outbox",
            enable_idempotence=True, acks="all", linger_ms=5, max_batch_size=1 << 20,
            max_request_size=8 << 20, request_timeout_ms=PRODUCER_REQUEST_TIMEOUT_MS)

    async def start(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Fence older publishers, then drop the rows Kafka already has (see the module doc)."""
        await self._kafka(self._fence())
        published = await self._kafka(self.last_published_id())
        with self._pg():
            await conn.execute("DELETE FROM outbox WHERE id <= %s", [published])
            await conn.commit()

    async def _fence(self) -> None:
        await self.producer.start()
        # begin waits for InitProducerId; the empty transaction then ends without a request.
        # Only from here on is an older publisher unable to commit behind the tail scan.
        await self.producer.begin_transaction()
        await self.producer.commit_transaction()

    async def stop(self) -> None:
        """Close the producer, giving up after STOP_TIMEOUT (a dead broker cannot hold it)."""
        await within(self.producer.stop(), STOP_TIMEOUT)

    async def publish_pending(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """Send everything in the outbox; return how many records went out."""
        sent = 0
        while True:
            with self._pg():
                cur = await conn.execute("SELECT id, topic, key, value, partition FROM outbox ORDER BY id LIMIT %s",
                                         [PUBLISH_BATCH], binary=True)  # the values as bytes, not hex text
                rows = await cur.fetchall()
                if not rows:
                    await conn.commit()
                    return sent
            await self._kafka(self._send(rows))
            with self._pg():
                await conn.execute("DELETE FROM outbox WHERE id <= %s", [rows[-1][0]])
                await conn.commit()
            sent += len(rows)

    async def _send(self, rows: Sequence[tuple[Any, ...]]) -> None:
        # No `async with producer.transaction()`: on an error its exit awaits an abort that a dead
        # broker never answers. A failed transaction is left to the next publisher's fence.
        await self.producer.begin_transaction()
        delivered = [await self.producer.send(topic, bytes(value), key=None if key is None else bytes(key),
                                              partition=partition, headers=[(HEADER, str(oid).encode())])
                     for oid, topic, key, value, partition in rows]
        # Every record must be acknowledged BEFORE the commit. aiokafka fails a batch that the
        # broker refuses for good (OutOfOrderSequenceNumber after a broker restart, seen in CI)
        # only through that batch's futures, and would still commit the rest of the transaction:
        # the failed records would be lost while their outbox rows are deleted.
        failures = [r for r in await asyncio.gather(*delivered, return_exceptions=True) if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        await self.producer.commit_transaction()

    async def last_published_id(self) -> int:
        """Highest outbox id in the committed tails of the output topics (0 if none)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap,
                                    isolation_level="read_committed", enable_auto_commit=False,
                                    request_timeout_ms=REQUEST_TIMEOUT_MS)
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
            with contextlib.suppress(Exception):
                await within(consumer.stop(), STOP_TIMEOUT)

    def _pg(self) -> contextlib.AbstractContextManager[None]:
        return pg_errors(self.settings.database_url, session=True)

    async def _kafka(self, aw: Awaitable[T]) -> T:
        with kafka_errors(self.settings.kafka_bootstrap), self._transaction_errors():
            return await within(aw, CALL_TIMEOUT)

    @contextlib.contextmanager
    def _transaction_errors(self) -> Iterator[None]:
        try:
            yield
        except (ke.ProducerFenced, ke.InvalidProducerEpoch) as exc:
            raise LeadershipLost(f"the outbox producer was fenced ({type(exc).__name__}: another publisher "
                                 "started, or the broker aborted its transaction); a new one takes over") from exc
        except _LOST_TRANSACTION as exc:
            raise ServiceUnavailable(f"the outbox's Kafka transaction was lost ({type(exc).__name__}); "
                                     "a new producer redoes it") from exc


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
