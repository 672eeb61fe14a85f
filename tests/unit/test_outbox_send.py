"""The outbox publisher commits a Kafka transaction only when every record of it
was acknowledged: a batch the broker refuses fails the step, so its rows stay in
the outbox and a new producer redoes them (a lost record was seen in CI once
aiokafka committed the rest of a transaction around a failed batch)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka import errors as ke

from ducats.errors import ServiceUnavailable
from ducats.settings import load_settings
from sinks.outbox import OutboxPublisher


class FakeProducer:
    def __init__(self, fail_at: int | None) -> None:
        self.fail_at, self.sent = fail_at, 0
        self.calls: list[str] = []

    async def begin_transaction(self) -> None:
        self.calls.append("begin")

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.sent == self.fail_at:
            future.set_exception(ke.OutOfOrderSequenceNumber())
        else:
            future.set_result(self.sent)
        self.sent += 1
        return future

    async def commit_transaction(self) -> None:
        self.calls.append("commit")


def publisher(producer: FakeProducer) -> OutboxPublisher:
    p = OutboxPublisher(settings=load_settings(), partitions=[TopicPartition("t", 0)])
    p.producer = producer  # type: ignore[assignment]
    return p


ROWS = [(i, "t", None, b"v", None) for i in range(1, 6)]  # id, topic, key, value, partition


async def test_a_refused_record_fails_the_step_and_nothing_is_committed() -> None:
    producer = FakeProducer(fail_at=3)
    with pytest.raises(ServiceUnavailable, match="OutOfOrderSequenceNumber"):
        await publisher(producer)._kafka(publisher(producer)._send(ROWS))
    assert producer.calls == ["begin"]


async def test_all_acknowledged_then_committed() -> None:
    producer = FakeProducer(fail_at=None)
    await publisher(producer)._send(ROWS)
    assert producer.calls == ["begin", "commit"] and producer.sent == 5
