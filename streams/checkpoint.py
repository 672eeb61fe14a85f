"""The ledger's checkpoint: the order of a commit, written once, as code.

For each batch of input records, :meth:`Checkpoint.commit` runs three steps, in
this order, each after the previous one has succeeded:

    1. **write**: the sink applies the batch in ONE database transaction, which
       also records the next input offset of each partition it consumed (so a
       replayed record is recognised) and writes every outgoing record to the
       ``outbox`` table;
    2. **publish**: the outbox goes to Kafka inside Kafka transactions, and the
       published rows are deleted;
    3. **commit offsets**: only then are the Kafka consumer offsets committed.
       They are informational: on start the ledger seeks to the offsets stored
       with the data.

Every step is idempotent, so a crash or an outage between any two steps is
repaired by going round again from the state the database holds: the batch is
read again from the stored offsets (replayed records are skipped), the outbox
rows still in the table are published (those Kafka already has are found in
the topics' tails and dropped, sinks/outbox.py), the offsets are committed
with the next batch. A failure at step N raises that step's error
(:class:`WriteFailed`, :class:`PublishFailed`, :class:`OffsetCommitFailed`,
streams/errors.py), with the ``retriable`` of its cause, and nothing of step
N+1 runs. The steps must raise the project's errors (DucatsError): anything
else is a bug, and leaves as it is.

There is no sink base class: the ledger sink is the only sink with this
commit protocol. The Faust workers' sinks (Redis, metric history) live in
Faust's lifecycle and are idempotent writes keyed by the ledger's seq.
"""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from ducats.errors import DucatsError
from sinks.postgres.ledger import BatchReport
from streams.errors import CheckpointError, OffsetCommitFailed, PublishFailed, WriteFailed

R = TypeVar("R")


class Checkpoint(Generic[R]):
    """The three steps of one commit, given as callables (the ledger passes its sink's
    ``write_batch``, its publisher's ``publish_pending`` and its consumer's ``commit``)."""

    def __init__(self, *, write: Callable[[Sequence[R]], Awaitable[BatchReport]],
                 publish: Callable[[], Awaitable[int]], commit_offsets: Callable[[], Awaitable[None]]) -> None:
        self._write = write
        self._publish = publish
        self._commit_offsets = commit_offsets
        self.step: str | None = None  # the step running now ("publishing the outbox"), None between commits

    async def commit(self, records: Sequence[R]) -> BatchReport:
        """Write ``records``, publish the outbox, commit the consumer offsets (see the module doc);
        return the batch's report, with the number of outbox records published."""
        try:
            started = time.perf_counter()
            report = await self._step(WriteFailed, lambda: self._write(records))
            written = time.perf_counter()
            report.published = await self._step(PublishFailed, self._publish)
            published = time.perf_counter()
            await self._step(OffsetCommitFailed, self._commit_offsets)
            report.ms.update(write=_ms(written - started), publish=_ms(published - written),
                             commit_offsets=_ms(time.perf_counter() - published))
        finally:
            self.step = None
        return report

    async def _step(self, error: type[CheckpointError], run: Callable[[], Awaitable[T]]) -> T:
        self.step = error.step
        try:
            return await run()
        except DucatsError as exc:
            raise error(exc) from exc


T = TypeVar("T")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
