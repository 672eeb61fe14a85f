"""The bounds and error classification the ledger relies on to ride out outages, without services:
ducats.kafka.within / kafka_error and the ledger's teardown of one part (streams.ledger._quietly)."""
from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import errors as ke

from ducats.errors import ServiceRefused, ServiceUnavailable
from ducats.kafka import kafka_call, kafka_error, within
from streams.ledger import _quietly

BOOT = "127.0.0.1:1"


async def test_within_gives_up_on_a_call_stuck_in_a_shielded_wait() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def stuck() -> None:  # what aiokafka's commit_transaction does with the broker gone
        try:
            await asyncio.shield(never)
        except asyncio.CancelledError:
            await never  # ignores its cancellation: asyncio.wait_for would wait here forever

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(stuck(), 0.2)
    assert time.monotonic() - started < 1
    never.cancel()


async def test_within_returns_the_result_and_passes_errors_on() -> None:
    async def answer() -> int:
        return 42

    async def broken() -> None:
        raise ke.KafkaConnectionError("refused")

    assert await within(answer(), 1) == 42
    with pytest.raises(ke.KafkaConnectionError):
        await within(broken(), 1)


@pytest.mark.parametrize("exc", [ke.KafkaConnectionError("x"), ke.NodeNotReadyError("x"), ke.KafkaTimeoutError(),
                                 ke.RequestTimedOutError(), TimeoutError(), ConnectionRefusedError()])
def test_a_broker_that_does_not_answer_is_retriable_with_the_fix(exc: BaseException) -> None:
    err = kafka_error(exc, BOOT)
    assert isinstance(err, ServiceUnavailable) and err.exit_code == 75
    assert str(err) == f"Kafka at {BOOT} is not answering; fix: start it (`ducats up kafka`) or set KAFKA_BOOTSTRAP"


@pytest.mark.parametrize("exc", [ke.NotLeaderForPartitionError(), ke.GroupCoordinatorNotAvailableError()])
def test_a_broker_that_says_not_now_is_retriable(exc: BaseException) -> None:
    assert isinstance(kafka_error(exc, BOOT), ServiceUnavailable)


@pytest.mark.parametrize("exc", [ke.TopicAuthorizationFailedError(), ke.MessageSizeTooLargeError(),
                                 ke.UnsupportedVersionError(), ke.KafkaConfigurationError("x")])
def test_what_no_retry_cures_is_permanent(exc: BaseException) -> None:
    err = kafka_error(exc, BOOT)
    assert isinstance(err, ServiceRefused) and err.exit_code == 1 and type(exc).__name__ in str(err)


async def test_kafka_call_bounds_and_classifies() -> None:
    with pytest.raises(ServiceUnavailable, match="is not answering"):
        await kafka_call(asyncio.sleep(5), bootstrap=BOOT, timeout=0.1)


async def test_a_teardown_part_never_raises_not_even_a_cancellation_from_inside(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.ledger.STOP_TIMEOUT", 0.2)

    async def cancelled_inside() -> None:  # aiokafka's consumer.stop after its fetch task was cancelled
        task = asyncio.ensure_future(asyncio.sleep(5))
        task.cancel()
        await task

    async def failing() -> None:
        raise ke.KafkaConnectionError("gone")

    await _quietly(cancelled_inside)
    await _quietly(failing)
    started = time.monotonic()
    await _quietly(lambda: asyncio.sleep(60))  # a close that hangs is given up after STOP_TIMEOUT
    assert time.monotonic() - started < 1


async def test_a_teardown_part_passes_its_own_cancellation_on() -> None:
    task = asyncio.ensure_future(_quietly(lambda: asyncio.sleep(60)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
