"""Faust's aiokafka transport, with a short fetch wait for the workers.

Faust builds its worker consumer with ``fetch_max_wait_ms=1500``, fixed. While
one fetch waits for data, aiokafka sends no new fetch for partitions whose
buffered records the agent has just drained, so those records wait up to
1.5 s: the snapshot's freshness budget (1 s) is gone before an event is even
read. This transport is the same as Faust's (``kafka://``) except that its
worker consumer waits at most FETCH_MAX_WAIT_MS (ducats.kafka; the ledger's
consumer uses it too). It is registered under the
``ducats://`` scheme through Faust's ``faust.transports`` entry point
(pyproject.toml), the extension point Faust offers for transports.

It also mends how Faust 0.15 commits offsets past gaps (faust-streaming#606).
The accepted topic is written in Kafka transactions, so a commit marker follows
each transaction's records in every partition: with the ledger's small batches
almost every other offset is a marker, which a consumer never sees as a record.
Faust records the offsets between two records it read as a gap, but its
``_add_gap(tp, previous + 1, offset)`` includes the record's own offset; merged
into the acked offsets that makes a duplicate, and the run of consecutive
offsets Faust commits up to stops at it. Commits then advanced by about two
offsets per commit interval however many records were processed, and a
restarted worker replayed nearly the whole log (correct, thanks to the seq
guards, but minutes instead of seconds once the log is long).

And it keeps table recovery alive through a rebalance that arrives while it
runs (two workers starting together): the standby changelog partitions that
rebalance adds have no offset yet (None), Faust's recovery goes on to seek them
before it restarts for the new assignment, and aiokafka refuses the seek
(``ValueError: Offset must be a positive integer``), which crashed the worker in
about one start in ten of two workers. Faust treats "no offset" as "from the
start" everywhere else (-1 becomes 0); so does this transport.

It also rereads, after a table recovery, the partitions that have no committed
offset yet. Faust pauses the stream partitions while it recovers the tables, and
drops the records its fetcher already read for them; then it seeks every
partition to its committed offset, but aiokafka's ``seek_to_committed`` moves
only partitions that have one (``if offset and offset > 0``). A partition
nobody had committed yet (a new group, or one whose commits had not advanced
before a ``kill -9``) stayed past the dropped records, and their events were
never counted: 1,346 events of one batch record in a kept run of
``test_kill_9_a_worker_mid_run_counts_nothing_twice``, read off the group's
commits in ``__consumer_offsets`` (the partition's offset never got past 1).
Such partitions are now sought to their start, which is what
``consumer_auto_offset_reset="earliest"`` means.

After every table recovery it reads each stream partition on from the position
the app keeps with its state (``app.stream_positions``, set by streams/metrics.py:
after the last batch record the partition's metrics record folded), not from the
group's committed offset, in the same seek (``seek_to_committed``): a second seek
after Faust's let records fetched from the commit reach the agent first, and
Faust then dropped the reread ones as already read (its ``_read_offset``). A commit can run ahead of the tables (Faust's
``_new_offset`` lets one unacked offset through after the committed one) or
behind them; the state's own position is the one that is exact.

Last, it commits offsets only once the tables' changelog records are in Kafka
(README, "Recovery and rebalancing"). Faust flushes its producer before each
commit, but that flush gives up on its buffer when one record takes more than
0.1 s to reach aiokafka, so on a stalled machine offsets were committed for
events whose changelog records were still queued, and a ``kill -9`` then lost
them: the restarted worker rebuilt its tables without those events and read on
past them. This producer follows each record it is handed (``send_soon``, the
tables' path) until the broker acknowledges it, and its flush waits for every
record handed to it before the flush began. A record Kafka finally refuses
(after ``producer_request_timeout``, 20 minutes of retries) fails the commit:
the worker stops, and a restart rebuilds its tables from what Kafka holds.

Its buffer holds up to CHANGELOG_BUFFER records before Faust's conductor waits for
it to drain (Faust's own bound is 100; see the constant).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import FutureMessage

from ducats.kafka import FETCH_MAX_WAIT_MS
from ducats.logs import get_logger

log = get_logger(__name__)


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
        return consumer

    async def seek_to_committed(self) -> Mapping[Any, int]:
        # A changelog partition is Faust's recovery's to place, not ours.
        return await self.call_thread(seek_to_committed, self._ensure_consumer(),
                                      skip=self.app.tables.changelog_topics,
                                      positions=getattr(self.app, "stream_positions", None))


Positions = Callable[[Iterable[Any]], Mapping[Any, int]]


async def seek_to_committed(consumer: Any, *, skip: AbstractSet[str] = frozenset(),
                            positions: Positions | None = None) -> Mapping[Any, int]:
    """aiokafka's ``seek_to_committed``, then: the partitions ``positions`` knows a read
    position for (the app's state) to that position instead, and those it leaves where
    the fetcher was (no committed offset; see the module doc) to their start, except
    ``skip``'s topics. Returns where each partition now reads from, which Faust's
    ``perform_seek`` takes as the partition's read and committed offsets: one seek per
    partition, so no record fetched from the first position can outrun the second."""
    committed: Mapping[Any, int] = await consumer.seek_to_committed()
    kept = dict(positions(list(committed))) if positions is not None else {}
    for tp, offset in kept.items():
        consumer.seek(tp, offset)
    if kept:
        log.info("worker.positions", source="tables", positions={f"{tp.topic}:{tp.partition}": o
                                                                  for tp, o in sorted(kept.items())},
                 committed={f"{tp.topic}:{tp.partition}": committed[tp] for tp in sorted(kept)})
    unplaced = [tp for tp, offset in committed.items()
                if tp not in kept and (offset is None or offset <= 0) and tp.topic not in skip]
    if unplaced:
        await consumer.seek_to_beginning(*unplaced)
    return {**committed, **kept}


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def seek_wait(self, partitions: Mapping[Any, int | None]) -> None:
        # An offset not known yet means the start of the partition (see the module doc).
        await super().seek_wait({tp: 0 if offset is None else offset for tp, offset in partitions.items()})

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        # Faust passes the offset of the record that ended the gap; the gap is the
        # offsets before it (see the module doc).
        await super()._add_gap(tp, offset_from, offset_to - 1)


class ChangelogLost(RuntimeError):
    """A table's changelog record that Kafka never acknowledged."""


# How many records (the tables' changelog) may wait in Faust's producer buffer before its
# conductor stops handing records to the agents (Faust: 100). At 100 a worker that fell a
# little behind got batches of 2 records instead of DUCATS_METRICS_BATCH, and small batches
# write an edges changelog record about once per event, so it fell further behind: bench
# metrics 4,800 -> 42,111 events/s on a slower machine (BENCHMARKS.md). The wait still comes,
# at this bound, and exactness does not depend on it (flush below).
CHANGELOG_BUFFER = 20_000


class Producer(faust_aiokafka.Producer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unacked: set[FutureMessage] = set()
        self.buffer.max_messages = CHANGELOG_BUFFER

    def send_soon(self, fut: FutureMessage) -> None:
        self.unacked.add(fut)
        fut.add_done_callback(self._acked)
        super().send_soon(fut)

    def _acked(self, fut: Any) -> None:
        self.unacked.discard(fut)

    async def flush(self) -> None:
        # Only the records handed over so far: under load new ones keep coming.
        waiting = list(self.unacked)
        await super().flush()
        if waiting:
            await asyncio.wait(waiting)
        failed = [f for f in waiting if f.cancelled() or f.exception() is not None]
        if failed:
            m = failed[0].message
            why = "cancelled" if failed[0].cancelled() else repr(failed[0].exception())
            raise ChangelogLost(f"{len(failed)} changelog record(s) not written, the first to "
                                f"{m.channel} partition {m.partition}: {why}")


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    Producer = Producer
