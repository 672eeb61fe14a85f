"""The upstream client: mint and transfer events into the pipeline's input topics.

Every record is decoded with :mod:`schemas.codec` before it is sent, so what
the schema rejects never reaches Kafka. Sends are batched: ``send`` only
queues a record in the producer, and one ``flush`` per chunk waits for the
lot; the delivery futures are then checked, so a record Kafka refused is an
error rather than a silent loss. The producer is idempotent (acks=all), so its
own retries never duplicate a record.

Keys: a mint by its batch (one batch's events stay in order in one
partition), a transfer by its sending holder (one holder's transfers stay in
the order they were sent, which is the order the ledger applies them in).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ducats.errors import DucatsError
from ducats.kafka import kafka_call, make_producer
from ducats.settings import Settings
from schemas.codec import MAX_RECORD_BYTES, decode_mint, decode_transfer
from schemas.errors import InvalidEvent
from schemas.models import MintBatch, Transfer, utc_now

FLUSH_EVERY = 5_000  # records queued per flush: enough to batch, few futures held
MAX_MINT_SIZE = 10_000
# The input topics take records up to the codec's 4 MiB; the client must too.
MAX_REQUEST_BYTES = MAX_RECORD_BYTES + (64 << 10)


class UpstreamError(DucatsError):
    """The upstream client cannot do what it was asked."""


class BadRequest(UpstreamError):
    """Arguments that can never work (a mint size over 10,000, a batch out of range)."""


class TopicMissing(UpstreamError):
    """The topic does not exist (the broker does not create topics on first use)."""


class DeliveryFailed(UpstreamError):
    """Kafka refused a record or stopped answering mid-way."""

    retriable = True


class EventKind(StrEnum):
    """The input topics, by the name the CLI uses."""

    MINTS = "mints"
    TRANSACTIONS = "transactions"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    """One record to send: its key and value bytes."""

    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedLine:
    """An input line the codec turned away at the door."""

    line_no: int
    error: InvalidEvent

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.error.reason.value}: {self.error.detail}"


@dataclass(slots=True, kw_only=True)
class PublishSummary:
    """Counts of one publish run; ``ok`` when nothing was rejected."""

    sent: int = 0
    rejected: int = 0

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    def __str__(self) -> str:
        return f"sent {self.sent}, rejected at the door {self.rejected}"


def topic_for(settings: Settings, kind: EventKind) -> str:
    return settings.topic_mints if kind is EventKind.MINTS else settings.topic_transactions


def mint_record(mint: MintBatch) -> Outgoing:
    return Outgoing(key=str(mint.batch).encode(), value=mint.to_json())


def transfer_record(transfer: Transfer) -> Outgoing:
    return Outgoing(key=transfer.sender.encode(), value=transfer.to_json())


def parse_line(line: bytes, *, kind: EventKind) -> Outgoing:
    """Validate one JSON line and return the record to send: the line's own bytes
    (unknown fields kept, per the evolution rule) under the event's key.

    Raises :class:`InvalidEvent` for a line the schema rejects.
    """
    value = line.strip()
    if kind is EventKind.MINTS:
        return Outgoing(key=str(decode_mint(value).batch).encode(), value=value)
    return Outgoing(key=decode_transfer(value).sender.encode(), value=value)


def accepted_lines(lines: Iterable[bytes], *, kind: EventKind, summary: PublishSummary,
                   on_rejected: Callable[[RejectedLine], None]) -> Iterator[Outgoing]:
    """The records of the valid lines; blank lines are skipped, rejected ones are
    counted in ``summary`` and reported to ``on_rejected``. Line numbers start at 1."""
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield parse_line(line, kind=kind)
        except InvalidEvent as exc:
            summary.rejected += 1
            on_rejected(RejectedLine(line_no=line_no, error=exc))


def mint_events(*, batches: int, size: int, holder: str, first_batch: int = 1,
                timestamp: str | None = None) -> Iterator[MintBatch]:
    """``batches`` mints of ``size`` ducats each, batches ``first_batch``.., seq 1..size,
    with deterministic ids ``mint-<batch>``. Raises :class:`BadRequest` at the call,
    before anything is sent (hence a generator expression, not a generator function)."""
    _check_mint_request(batches=batches, size=size, holder=holder, first_batch=first_batch)
    stamp = timestamp or utc_now()
    return (MintBatch(mint_id=f"mint-{batch}", batch=batch, first_seq=1, count=size,
                      holder=holder, timestamp=stamp)
            for batch in range(first_batch, first_batch + batches))


def _check_mint_request(*, batches: int, size: int, holder: str, first_batch: int) -> None:
    if not 1 <= size <= MAX_MINT_SIZE:
        raise BadRequest(f"--size must be 1..{MAX_MINT_SIZE} (one mint event mints at most "
                         f"{MAX_MINT_SIZE} ducats), got {size}")
    if batches < 1:
        raise BadRequest(f"--batches must be at least 1, got {batches}")
    if first_batch < 0 or first_batch + batches - 1 > 999_999_999:
        raise BadRequest(f"batches {first_batch}..{first_batch + batches - 1} are outside 0..999999999")
    if not 1 <= len(holder) <= 128:
        raise BadRequest("--holder must be 1..128 characters")


async def publish(settings: Settings, topic: str, records: Iterable[Outgoing], *,
                  on_sent: Callable[[int], None] | None = None,
                  flush_every: int = FLUSH_EVERY) -> int:
    """Send ``records`` to ``topic``; return how many Kafka acknowledged.

    ``on_sent(n)`` is called after each flush with the records it confirmed.
    Raises :class:`ServiceUnavailable` when Kafka does not answer,
    :class:`TopicMissing` and :class:`DeliveryFailed`.
    """
    producer = make_producer(settings, max_request_size=MAX_REQUEST_BYTES)
    await _start(producer, settings)
    try:
        await _require_topic(producer, topic, settings)
        sent, pending = 0, []
        for record in records:
            pending.append(await _send(producer, topic, record, sent_so_far=sent))
            if len(pending) >= flush_every:
                sent += await _settle(producer, pending, topic, on_sent)
                pending = []
        return sent + await _settle(producer, pending, topic, on_sent)
    finally:
        await producer.stop()


async def publish_lines(settings: Settings, *, kind: EventKind, lines: Iterable[bytes],
                        on_rejected: Callable[[RejectedLine], None],
                        on_sent: Callable[[int], None] | None = None,
                        flush_every: int = FLUSH_EVERY) -> PublishSummary:
    """Validate and send JSON lines to the input topic of ``kind``; valid lines
    are sent even when others are rejected. Raises like :func:`publish`."""
    summary = PublishSummary()
    records = accepted_lines(lines, kind=kind, summary=summary, on_rejected=on_rejected)
    summary.sent = await publish(settings, topic_for(settings, kind), records, on_sent=on_sent,
                                 flush_every=flush_every)
    return summary


async def publish_mints(settings: Settings, mints: Iterable[MintBatch], *,
                        on_sent: Callable[[int], None] | None = None,
                        flush_every: int = FLUSH_EVERY) -> int:
    """Send mint events, keyed by batch; return how many were acknowledged."""
    return await publish(settings, settings.topic_mints, map(mint_record, mints),
                         on_sent=on_sent, flush_every=flush_every)


async def publish_transfers(settings: Settings, transfers: Iterable[Transfer], *,
                            on_sent: Callable[[int], None] | None = None,
                            flush_every: int = FLUSH_EVERY) -> int:
    """Send transfer events, keyed by the sending holder; return how many were acknowledged."""
    return await publish(settings, settings.topic_transactions, map(transfer_record, transfers),
                         on_sent=on_sent, flush_every=flush_every)


async def _start(producer: AIOKafkaProducer, settings: Settings) -> None:
    try:
        await kafka_call(producer.start(), bootstrap=settings.kafka_bootstrap)
    except DucatsError:
        await producer.stop()
        raise


async def _require_topic(producer: AIOKafkaProducer, topic: str, settings: Settings) -> None:
    # One metadata round trip, instead of send() waiting 40 s for a topic that
    # the broker will never create (auto.create.topics.enable=false).
    metadata = await kafka_call(producer.client.fetch_all_metadata(), bootstrap=settings.kafka_bootstrap)
    if topic not in metadata.topics():
        raise TopicMissing(f"topic {topic} does not exist; fix: ducats topics")


async def _send(producer: AIOKafkaProducer, topic: str, record: Outgoing, *,
                sent_so_far: int) -> asyncio.Future[object]:
    try:
        return await producer.send(topic, record.value, key=record.key)  # type: ignore[no-any-return]
    except KafkaError as exc:
        raise DeliveryFailed(f"Kafka refused a record for {topic} after {sent_so_far} were "
                             f"confirmed: {exc!r}") from exc


async def _settle(producer: AIOKafkaProducer, pending: list[asyncio.Future[object]], topic: str,
                  on_sent: Callable[[int], None] | None) -> int:
    if not pending:
        return 0
    await producer.flush()
    # Gathering collects every future; the first failure names the problem.
    results = await asyncio.gather(*pending, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise DeliveryFailed(f"Kafka refused {len(failures)} of {len(pending)} records for "
                             f"{topic}: {failures[0]!r}")
    if on_sent is not None:
        on_sent(len(pending))
    return len(pending)
