"""The ducats:// producer's flush returns only once every record handed to it
before the flush is in Kafka, and fails when Kafka refused one
(streams/transport.py). Faust commits offsets right after that flush, and a
table's changelog records are its only durable copy.

Faust's own flush gives up when one record takes more than 0.1 s to reach
aiokafka, which happens on a stalled machine (fresh-clone runs D2' and G1: a
``kill -9`` then lost events). Here the stall is made on purpose: the buffer
hands each record on 0.15 s late. The broker is real.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import faust
import pytest
from faust.transport.producer import ProducerBuffer

from ducats.kafka import TopicSpec, ensure_topics
from ducats.settings import Settings
from streams.transport import ChangelogLost, Producer
from tests.fixtures.ledger import read_all

STALL = 0.15  # seconds each record waits before the buffer hands it to aiokafka


@pytest.fixture
async def stalled(settings_factory: Callable[..., Settings]) -> AsyncIterator[tuple[Settings, faust.App, Producer]]:
    s = settings_factory()
    await ensure_topics(s, [TopicSpec(name=s.topic("changelog"), partitions=1),
                            TopicSpec(name=s.topic("small"), partitions=1, config={"max.message.bytes": "1000"})])
    app = faust.App(s.app_id, broker=s.faust_broker, producer_acks=-1, autodiscover=False)
    producer = app.producer
    assert isinstance(producer, Producer)
    buffer = cast(ProducerBuffer, producer.buffer)
    handed_on = buffer._send_pending

    async def late(fut: Any) -> None:
        await asyncio.sleep(STALL)
        await handed_on(fut)

    buffer._send_pending = late  # type: ignore[method-assign]
    await producer.start()
    try:
        yield s, app, producer
    finally:
        await producer.stop()


async def test_flush_waits_for_every_record_handed_over_before_it(
        stalled: tuple[Settings, faust.App, Producer]) -> None:
    s, app, producer = stalled
    topic = app.topic(s.topic("changelog"), key_serializer="raw", value_serializer="raw")
    before = [topic.send_soon(key=b"k%d" % i, value=b"v%d" % i, partition=0) for i in range(12)]
    await producer.flush()
    assert all(f.done() and not f.exception() for f in before)
    assert [r.value for r in await read_all(s, s.topic("changelog"))] == [b"v%d" % i for i in range(12)]


async def test_flush_fails_on_a_record_kafka_refused(stalled: tuple[Settings, faust.App, Producer]) -> None:
    s, app, producer = stalled
    topic = app.topic(s.topic("small"), key_serializer="raw", value_serializer="raw")
    topic.send_soon(key=b"fits", value=b"x", partition=0)
    topic.send_soon(key=b"too big", value=b"x" * 5000, partition=0)  # over the topic's max.message.bytes
    with pytest.raises(ChangelogLost, match=r"1 changelog record\(s\) not written.*partition 0"):
        await producer.flush()
    await producer.flush()  # the refused record is reported once: the next commit goes on
