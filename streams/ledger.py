"""The ledger worker: the pipeline's single writer of ownership.

It reads ``mints`` and ``transactions`` with aiokafka (not Faust: its
exactly-once rests on offsets stored in Postgres with the data, which Faust's
commit model cannot do), hands each batch to the ledger sink, then publishes
the outbox and commits the Kafka offsets, in that order (sinks/base.py).

Single writer: the sink's connection holds a Postgres advisory lock for the
process's life. A second ``ducats ledger`` waits on that lock as a hot standby
and takes over within moments of the leader's death; a leader that loses its
connection loses the lock with it, so a zombie can never write.
"""
from __future__ import annotations

import asyncio
import signal
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from ducats import observability as obs
from ducats.kafka import topic_partitions
from ducats.logs import get_logger
from ducats.settings import Settings
from sinks.outbox import OutboxPublisher
from sinks.postgres.ledger import BatchReport, LedgerSink

log = get_logger(__name__)
LEADER_LOCK = 0x6C6564676572  # "ledger"


async def _assign(consumer: AIOKafkaConsumer, sink: LedgerSink, tps: list[TopicPartition]) -> None:
    consumer.assign(tps)
    for tp in tps:
        offset = sink.offsets.get((tp.topic, tp.partition))
        if offset is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)


def _ordered(data: dict[TopicPartition, list], mints_topic: str) -> list:  # type: ignore[type-arg]
    """Mints before transfers, each partition in offset order (the documented batch order)."""
    keys = sorted(data, key=lambda tp: (tp.topic != mints_topic, tp.topic, tp.partition))
    return [rec for tp in keys for rec in data[tp]]


async def run_ledger(settings: Settings, *, stop: asyncio.Event | None = None, max_records: int = 5000) -> None:
    """Run until ``stop`` is set (or forever)."""
    stop = stop or asyncio.Event()
    sink = LedgerSink(settings=settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=f"{settings.app_id}-ledger",
        enable_auto_commit=False, isolation_level="read_committed",
        max_partition_fetch_bytes=16 << 20, fetch_max_bytes=64 << 20)
    inputs = await topic_partitions(settings, [settings.topic_mints, settings.topic_transactions])
    outputs = await topic_partitions(settings, [settings.topic_accepted, settings.topic_rejected, settings.topic_dlq])
    await sink.start(leader_lock=LEADER_LOCK)
    log.info("ledger.leader", last_offsets=len(sink.offsets))
    publisher = OutboxPublisher(settings=settings, partitions=outputs)
    try:
        await publisher.start(sink.connection)
        await publisher.publish_pending(sink.connection)
        await consumer.start()
        await _assign(consumer, sink, inputs)
        while not stop.is_set():
            data = await consumer.getmany(timeout_ms=200, max_records=max_records)
            if not data:
                continue
            started = time.perf_counter()
            report = await sink.write_batch(_ordered(data, settings.topic_mints))
            sent = await publisher.publish_pending(sink.connection)
            await consumer.commit()
            _observe(report, time.perf_counter() - started)
            log.info("ledger.batch", records=sum(len(v) for v in data.values()), mints=report.mints,
                     accepted=report.accepted, rejected=report.rejected, dead_letters=report.dead_letters,
                     replayed=report.replayed, published=sent, last_seq=report.last_seq,
                     ms=round((time.perf_counter() - started) * 1000, 1))
    finally:
        await consumer.stop()
        await publisher.stop()
        await sink.stop()


def _observe(report: BatchReport, seconds: float) -> None:
    for outcome in ("mints", "accepted", "rejected", "dead_letters", "replayed"):
        obs.LEDGER_RECORDS.labels(outcome).inc(getattr(report, outcome))
    obs.LEDGER_BATCH_SECONDS.observe(seconds)
    if report.last_seq:
        obs.LEDGER_SEQ.set(report.last_seq)


def main(settings: Settings) -> None:
    """Process entry point: run until SIGTERM or SIGINT, then stop cleanly."""
    obs.serve_metrics(settings.ledger_metrics_port)

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_ledger(settings, stop=stop, max_records=settings.ledger_batch)

    asyncio.run(_run())

