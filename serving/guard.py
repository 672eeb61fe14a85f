"""A timeout and a circuit breaker around every call to a service.

``async with guards.redis(): ...`` (or ``.postgres``, ``.kafka``) bounds the
block by the service's budget (DUCATS_API_*_TIMEOUT) and counts its failures
in a purgatory breaker. After DUCATS_API_BREAKER_FAILURES failures in a row
the breaker opens: calls fail at once with :class:`Unavailable` (503,
Retry-After) instead of waiting on a service that is down, and after
DUCATS_API_BREAKER_RESET seconds one call is let through to try again
(half-open), which closes it on success. So an outage costs a caller
microseconds, not the budget, and the API recovers by itself. Load is not an
outage: a request that finds this process's pool full (``PoolBusy``) is
answered 503 at once and counted in ``ducats_api_shed_total``, not by the
breaker.

purgatory: asyncio-native, typed and maintained, with state-change hooks
that drive the ``ducats_api_breaker_state`` gauge (README, "Libraries, and why").
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import psycopg
import psycopg_pool
from aiokafka.errors import KafkaError
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from redis import exceptions as redis_errors

from ducats.logs import get_logger
from ducats.settings import Settings
from reads.ledger import PoolBusy
from serving.errors import Unavailable
from serving.observability import BREAKER_STATE, BREAKER_TRIPS, SHED_TOTAL

log = get_logger(__name__)

STATE_VALUE = {"closed": 0, "half-opened": 1, "opened": 2}

# What counts as the service failing (anything else raised inside the block is the caller's business).
FAILURES: dict[str, tuple[type[BaseException], ...]] = {
    "postgres": (psycopg.OperationalError, psycopg.errors.QueryCanceled, psycopg_pool.PoolTimeout,
                 psycopg.InterfaceError, TimeoutError, OSError),
    "redis": (redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.BusyLoadingError,
              TimeoutError, OSError),
    "kafka": (KafkaError, TimeoutError, OSError),
}
# What answers 503 at once without counting as the service failing: the service answers, but this
# process has no capacity left for it now. A breaker that opened on load alone would refuse every
# request for DUCATS_API_BREAKER_RESET seconds (80 % of them at 5 % over capacity, bench api).
SHED: dict[str, tuple[type[BaseException], ...]] = {"postgres": (PoolBusy,), "redis": (), "kafka": ()}


class Guard:
    """The budget and breaker of one service; use it as ``async with guard():``."""

    def __init__(self, *, service: str, timeout: float, breakers: AsyncCircuitBreakerFactory,
                 reset: float) -> None:
        self.service, self.timeout, self.breakers, self.reset = service, timeout, breakers, reset
        self.failures, self.shed = FAILURES[service], SHED[service]
        self.opened_at: float | None = None
        BREAKER_STATE.labels(service).set(0)

    def __call__(self, timeout: float | None = None) -> _Call:
        """One guarded call: ``async with guard():``, or ``guard(2.0)`` for another budget
        (a ``?wait=`` poll, say)."""
        return _Call(self, self.timeout if timeout is None else timeout)

    def retry_after(self) -> float:
        if self.opened_at is None:
            return 1.0
        return max(1.0, self.opened_at + self.reset - time.monotonic())

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None


@dataclass(slots=True)
class _Call:
    guard: Guard
    timeout: float
    _breaker: Any = None
    _timer: Any = None

    async def __aenter__(self) -> _Call:
        g = self.guard
        self._breaker = await g.breakers.get_breaker(g.service)
        try:
            await self._breaker.__aenter__()
        except OpenedState:
            raise Unavailable(g.service, f"{g.service} is unavailable (circuit open); try again later",
                              retry_after=g.retry_after()) from None
        self._timer = asyncio.timeout(self.timeout)
        await self._timer.__aenter__()
        return self

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        g = self.guard
        try:
            await self._timer.__aexit__(et, exc, tb)
        except TimeoutError as timed_out:  # the budget ran out: asyncio turned the cancellation into this
            et, exc = TimeoutError, timed_out
        failed = exc is not None and isinstance(exc, g.failures)
        try:
            await self._breaker.__aexit__(et if failed else None, exc if failed else None, tb)
        except OpenedState:
            pass  # the failure that tripped it is reported below
        if failed:
            raise Unavailable(g.service, _describe(g.service, exc, self.timeout),
                              retry_after=g.retry_after()) from exc
        if exc is not None and isinstance(exc, g.shed):
            SHED_TOTAL.labels(g.service).inc()
            raise Unavailable(g.service, f"{g.service} is busy: {exc}; try again shortly", retry_after=1.0) from exc


def _describe(service: str, exc: BaseException | None, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"{service} did not answer within {timeout * 1000:.0f} ms"
    return f"{service} is unavailable: {type(exc).__name__}"


class Guards:
    """The three guards of one API process, sharing one breaker factory."""

    def __init__(self, settings: Settings) -> None:
        self.breakers = AsyncCircuitBreakerFactory(default_threshold=settings.api_breaker_failures,
                                                   default_ttl=settings.api_breaker_reset)
        self.breakers.add_listener(self._on_event)
        reset = settings.api_breaker_reset
        self.postgres = Guard(service="postgres", timeout=settings.api_pg_timeout, breakers=self.breakers, reset=reset)
        self.redis = Guard(service="redis", timeout=settings.api_redis_timeout, breakers=self.breakers, reset=reset)
        self.kafka = Guard(service="kafka", timeout=settings.api_kafka_timeout, breakers=self.breakers, reset=reset)

    def _on_event(self, name: str, event_type: str, event: Any) -> None:
        if event_type != "state_changed":
            return
        guard: Guard = getattr(self, name)
        state = str(event.state)
        guard.opened_at = time.monotonic() if state == "opened" else None
        BREAKER_STATE.labels(name).set(STATE_VALUE.get(state, 0))
        if state == "opened":
            BREAKER_TRIPS.labels(name).inc()
        log.warning("api.breaker", service=name, state=state)

    def states(self) -> dict[str, str]:
        return {g.service: ("open" if g.is_open else "closed") for g in (self.postgres, self.redis, self.kafka)}
