"""How a worker rides out a restart of Redis, PostgreSQL or Kafka.

A worker has several units of work that touch the services: the agent's
per-batch publication (one PostgreSQL query, one Redis pipeline), and the
timers (heartbeat, snapshot, partial rewrites). Each runs inside
:func:`service_errors`, which turns a client's failure into the project's error
tree and bounds the whole unit in time, and then:

- the agent *blocks and retries* (:meth:`WorkerHealth.ride_out`): its batch is
  acked only after the publication succeeded, so nothing is lost, and every
  write is idempotent (the seq compare-and-set of the partials, absolute values
  in the hot cache), so a repeated one changes nothing;
- a timer *tries once* (:meth:`WorkerHealth.attempt`): on an outage it returns,
  and a later tick tries again, after a capped exponential backoff.

The worker is ready (ducats.health: log line, gauge, status file) once its
heartbeat has run, that is once Faust has recovered its tables, and while no
unit of work is waiting for a service. A permanent error (a missing table, a
refused password) is not ridden out: it leaves, and crashes the worker.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import psycopg
import redis.exceptions as redis_errors
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from ducats.connect import PG_FIX, pg_error, redis_error
from ducats.errors import DucatsError, ServiceUnavailable, mask_url
from ducats.health import BACKOFF_CAP, BACKOFF_FIRST, Readiness
from ducats.settings import Settings

T = TypeVar("T")
UNIT_TIMEOUT = 30.0  # seconds: the backstop for one unit of work (client timeouts are shorter)
STARTING = "starting: joining the group and recovering the tables"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _retriable(exc: BaseException) -> bool:
    return isinstance(exc, DucatsError) and exc.retriable


@contextlib.contextmanager
def _translated(settings: Settings) -> Iterator[None]:
    try:
        yield
    except psycopg.OperationalError as exc:
        # The worker connected at start-up with these settings (run_worker checks),
        # so a connection that fails now was lost to a restart, not refused: an
        # outage. That includes the pool's PoolTimeout (no connection to hand out).
        url = mask_url(settings.database_url)
        raise ServiceUnavailable(f"PostgreSQL at {url} is unreachable or restarting ({_first_line(exc)}); "
                                 f"fix: {PG_FIX}") from exc
    except psycopg.Error as exc:
        raise pg_error(exc, settings.database_url) from exc
    except redis_errors.RedisError as exc:
        raise redis_error(exc, settings.redis_url) from exc
    except KafkaError as exc:
        if not (exc.retriable or isinstance(exc, KafkaConnectionError | KafkaTimeoutError)):
            raise
        raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap} is not answering ({_first_line(exc)}); "
                                 "fix: start it (`ducats up kafka`) or set KAFKA_BOOTSTRAP") from exc


async def service_errors(settings: Settings, work: Callable[[], Awaitable[T]],
                         timeout: float = UNIT_TIMEOUT) -> T:
    """Run ``work`` with its failures in the project's error tree, within ``timeout`` seconds
    (past it: ServiceUnavailable, since only a service that does not answer takes that long)."""
    with _translated(settings):
        try:
            async with asyncio.timeout(timeout):
                return await work()
        except TimeoutError as exc:
            raise ServiceUnavailable(f"a service did not answer within {timeout:.0f} s") from exc


class WorkerHealth:
    """The worker's readiness over its units of work (see the module doc)."""

    def __init__(self, *, settings: Settings, readiness: Readiness) -> None:
        self.settings = settings
        self.readiness = readiness
        self.started = False
        self.waiting: dict[str, str] = {}  # unit -> why it waits, in the order they began
        self._next_try: dict[str, tuple[float, float]] = {}  # unit -> (monotonic time, backoff)
        readiness.set_waiting(STARTING)

    def recovered(self) -> None:
        """Faust has recovered the tables (the heartbeat ran): ready unless a unit waits."""
        self.started = True
        self._update()

    async def ride_out(self, unit: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` until it succeeds, waiting out outages with capped exponential backoff."""
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self._fail(unit, exc)

        retrying = AsyncRetrying(retry=retry_if_exception(_retriable), reraise=True, before_sleep=before_sleep,
                                 wait=wait_exponential(multiplier=BACKOFF_FIRST, max=BACKOFF_CAP))
        result: T = await retrying(service_errors, self.settings, work)
        self._succeed(unit)
        return result

    async def attempt(self, unit: str, work: Callable[[], Awaitable[T]]) -> bool:
        """Run ``work`` once, unless ``unit`` is backing off after an outage; True if it ran
        and succeeded. An outage is recorded, not raised."""
        when, backoff = self._next_try.get(unit, (0.0, 0.0))
        now = time.monotonic()
        if now < when:
            return False
        try:
            await service_errors(self.settings, work)
        except DucatsError as exc:
            if not exc.retriable:
                raise
            backoff = min(BACKOFF_CAP, max(BACKOFF_FIRST, backoff * 2))
            self._next_try[unit] = (now + backoff, backoff)
            self._fail(unit, exc)
            return False
        self._next_try.pop(unit, None)
        self._succeed(unit)
        return True

    def _fail(self, unit: str, exc: BaseException | None) -> None:
        self.waiting[unit] = str(exc)
        self._update()

    def _succeed(self, unit: str) -> None:
        self.waiting.pop(unit, None)
        self._update()

    def _update(self) -> None:
        if self.started and not self.waiting:
            self.readiness.set_ready()
            return
        reason = next(iter(self.waiting.values()), STARTING)
        if self.readiness.ready is not False or self.readiness.waiting_for != reason:
            self.readiness.set_waiting(reason)
