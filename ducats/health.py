"""Readiness of a long-running process (the ledger, a worker, the API), told three ways:

- a structured log line on every change (``health.waiting`` / ``health.ready``);
- the Prometheus gauge ``ducats_ready{component=...}`` (1 ready, 0 waiting);
- a small JSON file ``<state dir>/run/<component>-<pid>.json`` that ``ducats status``
  reads, so an operator sees what a process waits for even while the services
  are down (nothing else could be asked then).

:func:`ride_out` wraps one unit of work: on a retriable error (a service that is
down or restarting) it marks the process not ready, backs off exponentially
(capped) and tries again, for as long as the outage lasts; a permanent error
leaves at once. The work it retries must be idempotent, as every step of the
pipeline is (README, "The ledger").
"""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
from prometheus_client import Gauge
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from ducats.errors import DucatsError
from ducats.logs import get_logger

log = get_logger(__name__)
READY = Gauge("ducats_ready", "1 while the process is doing its work, 0 while it waits for a service",
              ["component"])
BACKOFF_FIRST, BACKOFF_CAP = 0.1, 5.0  # seconds: 0.1, 0.2, 0.4, ... then every 5 s
T = TypeVar("T")


def _retriable(exc: BaseException) -> bool:
    return isinstance(exc, DucatsError) and exc.retriable


class Readiness:
    """The readiness of one process; ``status_dir`` is ``<state dir>/run``."""

    def __init__(self, *, component: str, status_dir: Path) -> None:
        self.component = component
        self.path = status_dir / f"{component}-{os.getpid()}.json"
        self.ready: bool | None = None
        self.waiting_for: str | None = None
        status_dir.mkdir(parents=True, exist_ok=True)

    def set_ready(self) -> None:
        if self.ready:
            return
        if self.ready is False:
            log.info("health.ready", component=self.component, after=self.waiting_for)
        self._set(True, None)

    def set_waiting(self, reason: str) -> None:
        if self.ready is not False or reason != self.waiting_for:
            log.warning("health.waiting", component=self.component, reason=reason)
        self._set(False, reason)

    def close(self) -> None:
        """The process is stopping: forget its status file."""
        self.path.unlink(missing_ok=True)

    def _set(self, ready: bool, reason: str | None) -> None:
        self.ready, self.waiting_for = ready, reason
        READY.labels(self.component).set(1 if ready else 0)
        doc = {"component": self.component, "pid": os.getpid(), "ready": ready, "waitingFor": reason,
               "since": dt.datetime.now(dt.UTC).isoformat()}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(doc))
        tmp.replace(self.path)  # atomic: `ducats status` never reads half a file

    async def ride_out(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` until it succeeds, waiting out retriable errors (see module doc)."""
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self.set_waiting(str(exc))

        retrying = AsyncRetrying(retry=retry_if_exception(_retriable), reraise=True, before_sleep=before_sleep,
                                 wait=wait_exponential(multiplier=BACKOFF_FIRST, max=BACKOFF_CAP))
        async def attempt() -> T:  # a plain callable returning an awaitable works too (tenacity awaits only coroutine functions)
            return await work()

        result: T = await retrying(attempt)
        self.set_ready()
        return result


def read_statuses(status_dir: Path) -> list[dict[str, Any]]:
    """The status of every process that wrote one and is still alive (stale files are removed)."""
    out: list[dict[str, Any]] = []
    for path in sorted(status_dir.glob("*.json")) if status_dir.is_dir() else []:
        try:
            doc = orjson.loads(path.read_bytes())
            os.kill(int(doc["pid"]), 0)
        except (OSError, ValueError, KeyError, orjson.JSONDecodeError):
            path.unlink(missing_ok=True)  # its process is gone (kill -9 leaves the file behind)
            continue
        out.append(doc)
    return out
