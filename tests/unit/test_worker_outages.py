"""How the worker classifies failures and rides them out (streams/outages.py), with fakes."""
from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import orjson
import psycopg
import pytest
import redis.exceptions as redis_errors
from aiokafka.errors import KafkaConnectionError, RecordTooLargeError
from psycopg_pool import PoolTimeout

from ducats.errors import ServiceRefused, ServiceUnavailable
from ducats.health import Readiness
from ducats.settings import Settings, load_settings
from streams.app import group_settings
from streams.outages import STARTING, WorkerHealth, service_errors


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(state_dir=tmp_path, database_url="postgresql://ducats:secret@127.0.0.1:1/ducats")


def status(s: Settings) -> dict[str, object]:
    [path] = s.run_dir.glob("worker-*.json")
    return orjson.loads(path.read_bytes())  # type: ignore[no-any-return]


async def failing(exc: BaseException) -> None:
    raise exc


@pytest.mark.parametrize("exc", [
    psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"),
    PoolTimeout("couldn't get a connection after 2.00 sec"),
    redis_errors.ConnectionError("Connection closed by server."),
    redis_errors.TimeoutError("Timeout reading from socket"),
    KafkaConnectionError("Unable to bootstrap"),
])
async def test_outages_are_retriable(settings: Settings, exc: BaseException) -> None:
    with pytest.raises(ServiceUnavailable) as info:
        await service_errors(settings, lambda: failing(exc))
    assert info.value.retriable and "secret" not in str(info.value)


@pytest.mark.parametrize("exc", [psycopg.errors.UndefinedTable("relation \"ducats\" does not exist"),
                                 redis_errors.AuthenticationError("invalid password")])
async def test_refusals_are_permanent(settings: Settings, exc: BaseException) -> None:
    with pytest.raises(ServiceRefused):
        await service_errors(settings, lambda: failing(exc))


async def test_a_kafka_error_that_is_not_an_outage_is_left_alone(settings: Settings) -> None:
    with pytest.raises(RecordTooLargeError):
        await service_errors(settings, lambda: failing(RecordTooLargeError()))


async def test_a_unit_that_hangs_is_cut_off(settings: Settings) -> None:
    with pytest.raises(ServiceUnavailable, match="within 0 s"):
        await service_errors(settings, lambda: asyncio.sleep(5), timeout=0.05)


async def test_ready_only_after_recovery_and_while_nothing_waits(settings: Settings) -> None:
    health = WorkerHealth(settings=settings, readiness=Readiness(component="worker", status_dir=settings.run_dir))
    assert status(settings)["waitingFor"] == STARTING
    down = redis_errors.ConnectionError("down")
    assert not await health.attempt("heartbeat", lambda: failing(down))
    assert "Redis" in str(status(settings)["waitingFor"])
    assert not await health.attempt("heartbeat", lambda: asyncio.sleep(0))  # backing off: not even tried
    health._next_try.clear()
    assert await health.attempt("heartbeat", lambda: asyncio.sleep(0))
    assert status(settings)["waitingFor"] == STARTING  # the outage is over, the tables are not recovered yet
    health.recovered()
    assert status(settings)["ready"] is True


async def test_ride_out_retries_the_same_work_until_it_succeeds(settings: Settings) -> None:
    health = WorkerHealth(settings=settings, readiness=Readiness(component="worker", status_dir=settings.run_dir))
    health.recovered()
    calls: list[bool] = []

    async def publish() -> str:
        calls.append(True)
        if len(calls) < 3:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        assert status(settings)["ready"] is False  # said so while it waited
        return "done"

    assert await health.ride_out("publish", publish) == "done"
    assert len(calls) == 3 and status(settings)["ready"] is True


async def test_ride_out_leaves_at_once_on_a_permanent_error(settings: Settings) -> None:
    health = WorkerHealth(settings=settings, readiness=Readiness(component="worker", status_dir=settings.run_dir))
    with pytest.raises(ServiceRefused):
        await health.ride_out("publish", lambda: failing(psycopg.errors.UndefinedTable("no table")))


def test_group_settings_follow_the_session_timeout_and_the_web_address(tmp_path: Path) -> None:
    host = socket.gethostname()
    s = load_settings(state_dir=tmp_path, worker_session_timeout=6.0, worker_web_port=6070)
    assert group_settings(s) == {"broker_session_timeout": 6.0, "broker_heartbeat_interval": 1.0,
                                 "canonical_url": f"http://{host}:6070",
                                 "consumer_group_instance_id": f"{host}:6070"}
    s = load_settings(state_dir=tmp_path, worker_session_timeout=1.5, worker_static_membership=False,
                      worker_web_port=6071)
    assert group_settings(s) == {"broker_session_timeout": 1.5, "broker_heartbeat_interval": 0.5,
                                 "canonical_url": f"http://{host}:6071", "consumer_group_instance_id": None}
    assert group_settings(load_settings(state_dir=tmp_path, worker_web_port=0))["consumer_group_instance_id"] is None
