"""One small base for every sink.

Lifecycle: ``start()`` opens and probes the connection, ``write_batch()``
writes one batch durably (it returns only after the database commit), and
``flush()`` clears buffers; ``stop()`` always runs ``flush()`` in a
``finally``. The order of a checkpoint is fixed once, here:

    1. the sink commits its database transaction, which also records the
       input offsets it consumed (so a replayed record is recognised);
    2. then the outbox is published to Kafka;
    3. then, and only then, the Kafka consumer offsets are committed.

Every write is idempotent, so a crash between any two steps is repaired by
replaying from the last committed step.
"""
from __future__ import annotations

import abc
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Sink(abc.ABC, Generic[T]):
    @abc.abstractmethod
    async def start(self) -> None:
        """Open connections and check that the target answers."""

    @abc.abstractmethod
    async def write_batch(self, batch: Sequence[T]) -> Any:
        """Write ``batch`` durably; return only after the commit."""

    async def flush(self) -> None:
        """Clear any buffered state. The default sink buffers nothing."""

    async def close(self) -> None:
        """Release connections. Called by stop() after flush()."""

    async def stop(self) -> None:
        try:
            await self.flush()
        finally:
            await self.close()

    async def __aenter__(self: Any) -> Any:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()
