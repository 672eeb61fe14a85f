"""The ledger worker: the pipeline's single writer of ownership.

It reads ``mints`` and ``transactions`` with aiokafka (not Faust: its
exactly-once rests on offsets stored in Postgres with the data, which Faust's
commit model cannot do) and commits each batch through its checkpoint
(streams/checkpoint.py: write, publish the outbox, commit the offsets).

The ducats' state (consciousness, memories, census, cooling) is applied from
the accepted log by the ducat-state sink (sinks/postgres/state.py), a task of
the leading term on its own connection, woken after each commit; it starts and
stops with the term, and a standby runs none.

Single writer: the sink's connection holds a Postgres advisory lock. A second
``ducats ledger`` waits on that lock as a hot standby and takes over within
moments of the leader's death; a leader that loses its connection loses the
lock with it, so a zombie can never write.

Riding out restarts. The process runs *terms*. A term connects to PostgreSQL,
takes the lock (or stands by for it), loads the stored offsets, starts the
outbox publisher (it fences older publishers and scans the topics' tails),
assigns and seeks the consumer, then loops over batches. On a retriable error
anywhere in a term (a service went away or does not answer, in PostgreSQL or
Kafka) the term is torn down, every part within a bound (closing the
connection releases the lock), and a new one starts, with capped exponential
backoff while the service is away: the crash-recovery path, in-process.
Readiness (ducats.health: log line, gauge, ``ducats status``) is "waiting"
while no term can start and "ready" once one leads or stands by. An idle
leader checks both services every IDLE_PROBE seconds, so an outage shows even
when no records flow. A permanent error (a refusal, a missing table or topic)
ends the process. At start-up :func:`preflight` waits out nothing: a service
that does not answer then ends ``ducats ledger`` at once (exit 75), in one line.
"""
from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from ducats import observability as obs
from ducats.errors import ConfigError, DucatsError
from ducats.health import Readiness
from ducats.kafka import kafka_call, kafka_errors, make_consumer, topic_partitions, within
from ducats.logs import get_logger
from ducats.settings import Settings
from sinks.outbox import OutboxPublisher
from sinks.postgres.ledger import BatchReport, InputRecord, LedgerSink
from sinks.postgres.state import StateSink
from sinks.postgres.state_process import StateChild
from streams.checkpoint import Checkpoint

log = get_logger(__name__)
LEADER_LOCK = 0x6C6564676572  # "ledger"
IDLE_PROBE = 5.0  # seconds without records before an idle leader checks that both services answer
PROBE_TIMEOUT = 10.0
COMMIT_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0  # for each part of a teardown: a dead service must not hold it
STALL = 5.0  # seconds a checkpoint step may take before the ledger says what it waits for


class Wake(Protocol):
    """What a term calls after each commit: an asyncio.Event, or the sink's process (StateChild)."""

    def set(self) -> None: ...


@dataclass(slots=True, kw_only=True)
class _Term:
    """One term's connections; ``exits`` tears them down in reverse order of opening."""

    settings: Settings
    sink: LedgerSink
    publisher: OutboxPublisher
    consumer: AIOKafkaConsumer
    inputs: list[TopicPartition]
    exits: contextlib.AsyncExitStack
    state: asyncio.Task[None]   # the ducat-state sink's loop
    wake: Wake                  # set after each commit: the state sink has a new range to apply

    async def fetch(self, max_records: int) -> dict[TopicPartition, list]:  # type: ignore[type-arg]
        with kafka_errors(self.settings.kafka_bootstrap):  # getmany is bounded by its timeout_ms
            return await self.consumer.getmany(timeout_ms=200, max_records=max_records)

    async def publish(self) -> int:
        return await self.publisher.publish_pending(self.sink.connection)

    async def commit_offsets(self) -> None:
        await kafka_call(self.consumer.commit(), bootstrap=self.settings.kafka_bootstrap, timeout=COMMIT_TIMEOUT)

    async def probe(self) -> None:
        """Both services still answer (and the lock's session is alive), or a retriable error."""
        await self.sink.ping()
        await kafka_call(self.consumer.end_offsets(self.inputs), bootstrap=self.settings.kafka_bootstrap,
                         timeout=PROBE_TIMEOUT)


async def _quietly(close: Callable[[], Awaitable[object]]) -> None:
    """Run one part of a teardown within STOP_TIMEOUT. It follows a failure or a stop, so the
    service may be gone: what goes wrong here is logged, never raised. That includes a
    CancelledError from inside aiokafka (its fetcher's close awaits the fetch task it cancelled);
    only a cancellation of this very task is passed on."""
    try:
        await within(close(), STOP_TIMEOUT)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.info("ledger.teardown", part=getattr(close, "__qualname__", "?"), error="CancelledError")
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.info("ledger.teardown", part=getattr(close, "__qualname__", "?"), error=type(exc).__name__)


async def _unless_stopped(aw: Awaitable[None], stop: asyncio.Event) -> bool:
    """Await ``aw`` unless ``stop`` is set first (then ``aw`` is cancelled); True if it finished."""
    task, stopped = asyncio.ensure_future(aw), asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    if task in done:
        task.result()
        return True
    return False


async def _take_lead(sink: LedgerSink, stop: asyncio.Event, readiness: Readiness) -> bool:
    """Hold the single-writer lock, standing by for it if another ledger leads; False if
    ``stop`` came first. A standby is ready: waiting for the lock is its work."""
    if await sink.try_lead(LEADER_LOCK):
        return True
    readiness.set_ready()
    log.info("ledger.standby")
    return await _unless_stopped(sink.wait_lead(LEADER_LOCK), stop)


async def _start_kafka(settings: Settings, sink: LedgerSink, exits: contextlib.AsyncExitStack
                       ) -> tuple[OutboxPublisher, AIOKafkaConsumer, list[TopicPartition]]:
    s = settings
    inputs = await topic_partitions(s, [s.topic_mints, s.topic_transactions])
    outputs = await topic_partitions(s, [s.topic_accepted, s.topic_accepted_batches, s.topic_rejected, s.topic_dlq])
    sink.accepted_partitions = accepted_partitions(s, outputs)
    publisher = OutboxPublisher(settings=s, partitions=outputs)
    exits.push_async_callback(_quietly, publisher.stop)
    await publisher.start(sink.connection)
    await publisher.publish_pending(sink.connection)  # what an earlier term committed but did not publish
    consumer = make_consumer(s, group_id=f"{s.app_id}-ledger", max_partition_fetch_bytes=16 << 20,
                             fetch_max_bytes=64 << 20)
    exits.push_async_callback(_quietly, consumer.stop)
    await kafka_call(consumer.start(), bootstrap=s.kafka_bootstrap)
    consumer.assign(inputs)
    for tp in inputs:
        offset = sink.offsets.get((tp.topic, tp.partition))
        if offset is None:
            await kafka_call(consumer.seek_to_beginning(tp), bootstrap=s.kafka_bootstrap)
        else:
            consumer.seek(tp, offset)
    return publisher, consumer, inputs


async def _begin(settings: Settings, stop: asyncio.Event, readiness: Readiness) -> _Term | None:
    """Start a term (module doc); None if ``stop`` came first. What it opened before a
    failure is torn down before the error leaves."""
    if stop.is_set():
        return None
    exits = contextlib.AsyncExitStack()
    try:
        sink = LedgerSink(settings=settings)
        exits.push_async_callback(_quietly, sink.stop)  # last out: closing the session releases the lock
        await sink.connect()
        if not await _take_lead(sink, stop, readiness):
            await exits.aclose()
            return None
        await sink.load()
        state, wake = await _start_state(settings, exits)
        publisher, consumer, inputs = await _start_kafka(settings, sink, exits)
    except BaseException:
        await exits.aclose()
        raise
    log.info("ledger.leader", last_offsets=len(sink.offsets), owners=len(sink.owners))
    return _Term(settings=settings, sink=sink, publisher=publisher, consumer=consumer, inputs=inputs,
                 exits=exits, state=state, wake=wake)


async def _start_state(settings: Settings, exits: contextlib.AsyncExitStack) -> tuple[asyncio.Task[None], Wake]:
    """The ducat-state sink: a child process (``state_process``) or a task on its own connection;
    the teardown stops it. Returns the task that fails when the sink does, and its wake."""
    if settings.state_process:
        child = await StateChild.start(settings)
        exits.push_async_callback(_quietly, child.stop)
        return child.task, child
    state = StateSink(settings=settings)
    exits.push_async_callback(_quietly, state.stop)
    await state.connect()
    wake = asyncio.Event()
    task = asyncio.create_task(state.run(wake), name="ducat-state-sink")

    async def cancel() -> None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    exits.push_async_callback(_quietly, cancel)
    return task, wake


def _ordered(data: dict[TopicPartition, list], mints_topic: str) -> list:  # type: ignore[type-arg]
    """Mints before transfers, each partition in offset order (the documented batch order)."""
    keys = sorted(data, key=lambda tp: (tp.topic != mints_topic, tp.topic, tp.partition))
    return [rec for tp in keys for rec in data[tp]]


async def _watched(checkpoint: Checkpoint[InputRecord], records: list[InputRecord],
                   readiness: Readiness) -> BatchReport:
    """``checkpoint.commit(records)``; while a step takes longer than STALL seconds, readiness says
    which one waits (a service that stopped answering), and ready again once it is through. The
    step is not cut short: its own bounds (the clients' timeouts, ducats.kafka.within) end it."""
    task = asyncio.ensure_future(checkpoint.commit(records))
    stalled = False
    try:
        while not (await asyncio.wait({task}, timeout=STALL))[0]:
            stalled = True
            readiness.set_waiting(f"{checkpoint.step} is taking over {STALL:.0f} s: "
                                  "a service is slow or not answering")
    except asyncio.CancelledError:
        task.cancel()
        raise
    report = task.result()
    if stalled:
        readiness.set_ready()
    return report


async def _lead(term: _Term, stop: asyncio.Event, max_records: int, readiness: Readiness) -> None:
    """Loop over batches through the checkpoint until ``stop``; errors leave (the caller decides)."""
    async def write(records: Sequence[InputRecord]) -> BatchReport:
        report = await term.sink.write_batch(records)
        term.wake.set()  # committed: the state sink may apply it while the outbox goes to Kafka
        return report

    checkpoint: Checkpoint[InputRecord] = Checkpoint(write=write, publish=term.publish,
                                                commit_offsets=term.commit_offsets)
    idle_since = time.monotonic()
    while not stop.is_set():
        if term.state.done():
            term.state.result()  # the state sink failed: its error ends the term (or the process)
            raise RuntimeError("the ducat-state sink stopped")  # pragma: no cover - its loop never returns
        data = await term.fetch(max_records)
        if not data:
            if time.monotonic() - idle_since > IDLE_PROBE:
                await term.probe()
                idle_since = time.monotonic()
            continue
        started = time.perf_counter()
        report = await _watched(checkpoint, _ordered(data, term.settings.topic_mints), readiness)
        idle_since = time.monotonic()
        _observe(report, time.perf_counter() - started)
        log.info("ledger.batch", records=sum(len(v) for v in data.values()), mints=report.mints,
                 accepted=report.accepted, rejected=report.rejected, dead_letters=report.dead_letters,
                 replayed=report.replayed, published=report.published, last_seq=report.last_seq,
                 ms=round((time.perf_counter() - started) * 1000, 1), steps=report.ms)


async def run_ledger(settings: Settings, *, stop: asyncio.Event | None = None, max_records: int = 5000) -> None:
    """Run until ``stop`` is set (or forever), term after term (module doc)."""
    stop = stop or asyncio.Event()
    readiness = Readiness(component="ledger", status_dir=settings.run_dir)

    async def begin() -> _Term | None:  # a coroutine function: tenacity calls a lambda synchronously
        return await _begin(settings, stop, readiness)

    try:
        while not stop.is_set():
            term = await readiness.ride_out(begin)
            if term is None:
                return
            try:
                await _lead(term, stop, max_records, readiness)
            except DucatsError as exc:
                if not exc.retriable:
                    log.error("ledger.failed", error=str(exc))
                    raise
                readiness.set_waiting(str(exc))  # and round again: a new term
            finally:
                await term.exits.aclose()
    finally:
        readiness.close()


async def preflight(settings: Settings) -> None:
    """The start-up checks of ``ducats ledger``, waiting nothing out: PostgreSQL answers, accepts
    us and is migrated; Kafka answers and has the topics. Raises the project's error."""
    s = settings
    sink = LedgerSink(settings=s)
    try:
        await sink.connect()
        await sink.load()
    finally:
        await sink.stop()
    accepted_partitions(s, await topic_partitions(s, [s.topic_mints, s.topic_transactions, s.topic_accepted,
                                                      s.topic_accepted_batches, s.topic_rejected, s.topic_dlq]))


def accepted_partitions(s: Settings, tps: list[TopicPartition]) -> int:
    """The accepted topic's partition count, which the batches topic must share: batch
    record and per-event records of partition p go to partition p of each."""
    counts = {t: sum(1 for tp in tps if tp.topic == t) for t in (s.topic_accepted, s.topic_accepted_batches)}
    if counts[s.topic_accepted] != counts[s.topic_accepted_batches]:
        raise ConfigError(f"{s.topic_accepted} has {counts[s.topic_accepted]} partitions but "
                          f"{s.topic_accepted_batches} has {counts[s.topic_accepted_batches]}; they must match "
                          f"(fix: delete the batches topic and run `ducats topics`)")
    return counts[s.topic_accepted]


def _observe(report: BatchReport, seconds: float) -> None:
    for outcome in ("mints", "accepted", "rejected", "dead_letters", "replayed"):
        obs.LEDGER_RECORDS.labels(outcome).inc(getattr(report, outcome))
    obs.LEDGER_BATCH_SECONDS.observe(seconds)
    if report.last_seq:
        obs.LEDGER_SEQ.set(report.last_seq)


def main(settings: Settings) -> None:
    """Process entry point: run until SIGTERM or SIGINT, then stop cleanly."""
    obs.serve_metrics(settings.ledger_metrics_port)

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_ledger(settings, stop=stop, max_records=settings.ledger_batch)

    asyncio.run(_run())
