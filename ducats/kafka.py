"""Small, shared Kafka plumbing on aiokafka: topic creation, producers, readiness,
and aiokafka's failures in the project's error tree.

Topic creation is idempotent: an existing topic is left as it is, and a topic
is ready (a leader for every partition) when ``ensure_topics`` returns.

Errors (:func:`kafka_error`): a broker that does not answer, or answers "not
now" (an aiokafka error with ``retriable``, a timeout), is ServiceUnavailable;
what no retry cures (authorisation, configuration, a record too large, an
unsupported version) is ServiceRefused. aiokafka retries inside many calls and
some of its waits are shielded from cancellation, so :func:`kafka_call` bounds a
call with :func:`within`, which gives up on a call that does not return instead
of waiting for it to notice its cancellation.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka import errors as ke
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import murmur2
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from ducats.errors import ConfigError, DucatsError, ServiceRefused, ServiceUnavailable
from ducats.settings import Settings

T = TypeVar("T")
KAFKA_FIX = "start it (`ducats up kafka`) or set KAFKA_BOOTSTRAP"
REQUEST_TIMEOUT_MS = 30_000  # one request to a broker (aiokafka's default is 40 s)
CALL_TIMEOUT = 60.0  # seconds: the backstop for one call that retries inside aiokafka
# The longest a consumer's fetch waits at the broker for data (aiokafka: 500 ms, Faust's workers
# 1,500). While one fetch is in flight to a broker, aiokafka sends that broker no other, and a
# fetch covers only the partitions with nothing buffered: a fetch for idle partitions (the mints
# topic under a stream of transfers) held the partitions with data back for the whole wait.
FETCH_MAX_WAIT_MS = 50
# Errors no retry can cure: fix the configuration, the permissions or the record.
_REFUSED: tuple[type[BaseException], ...] = (
    ke.KafkaConfigurationError, ke.AuthenticationFailedError, ke.AuthenticationMethodNotSupported,
    ke.SaslAuthenticationFailed, ke.UnsupportedSaslMechanismError, ke.TopicAuthorizationFailedError,
    ke.GroupAuthorizationFailedError, ke.ClusterAuthorizationFailedError, ke.TransactionalIdAuthorizationFailed,
    ke.UnsupportedVersionError, ke.IncompatibleBrokerVersion, ke.UnrecognizedBrokerVersion,
    ke.RecordTooLargeError, ke.MessageSizeTooLargeError, ke.InvalidTopicError)
# The broker is not there, or did not answer in time.
_NOT_ANSWERING: tuple[type[BaseException], ...] = (
    ke.KafkaConnectionError, ke.NoBrokersAvailable, ke.NodeNotReadyError, ke.KafkaTimeoutError,
    ke.RequestTimedOutError, TimeoutError, OSError)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def kafka_error(exc: BaseException, bootstrap: str) -> DucatsError:
    """The project's error for an aiokafka failure talking to ``bootstrap`` (see the module doc)."""
    if isinstance(exc, _REFUSED):
        return ServiceRefused(f"Kafka at {bootstrap} refused: {type(exc).__name__}: {_first_line(exc)}")
    if isinstance(exc, _NOT_ANSWERING):
        return ServiceUnavailable(f"Kafka at {bootstrap} is not answering; fix: {KAFKA_FIX}")
    if isinstance(exc, ke.KafkaError) and exc.retriable:
        return ServiceUnavailable(f"Kafka at {bootstrap} is not ready ({type(exc).__name__}); "
                                  "fix: wait, or check the broker's log")
    return ServiceRefused(f"Kafka at {bootstrap}: {type(exc).__name__}: {_first_line(exc)}")


@contextlib.contextmanager
def kafka_errors(bootstrap: str) -> Iterator[None]:
    """Inside: an aiokafka failure (or a timeout) leaves as the project's error (:func:`kafka_error`)."""
    try:
        yield
    except (ke.KafkaError, *_NOT_ANSWERING) as exc:
        raise kafka_error(exc, bootstrap) from exc


async def within(aw: Awaitable[T], seconds: float) -> T:
    """``await aw``, or TimeoutError after ``seconds``. Unlike ``asyncio.wait_for`` it does not
    wait for a timed-out call to finish cancelling: an aiokafka call stuck in a shielded wait
    (a transaction's end with the broker gone) would never finish. The abandoned call is
    cancelled and its outcome discarded; the caller must drop the client it used."""
    task = asyncio.ensure_future(aw)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # nothing left unretrieved
        raise TimeoutError(f"no answer within {seconds:.0f} s")
    return task.result()


async def kafka_call(aw: Awaitable[T], *, bootstrap: str, timeout: float = CALL_TIMEOUT) -> T:
    """``aw`` bounded by ``timeout`` seconds, with its failures as the project's errors."""
    with kafka_errors(bootstrap):
        return await within(aw, timeout)


def key_partition(key: bytes, partitions: int) -> int:
    """The partition the Kafka producer's default partitioner picks for ``key``
    (murmur2, as aiokafka's DefaultPartitioner and the Java client do)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, kw_only=True)
class TopicSpec:
    """A topic the pipeline owns, with its partitions and broker-side config."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client; Kafka not answering is a one-line ServiceUnavailable."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=15000)
    try:
        await kafka_call(admin.start(), bootstrap=settings.kafka_bootstrap, timeout=30)
    except DucatsError:
        with contextlib.suppress(Exception):
            await admin.close()
        raise
    try:
        with kafka_errors(settings.kafka_bootstrap):
            yield admin
    finally:
        await admin.close()


UNKNOWN_TOPIC = 3  # UNKNOWN_TOPIC_OR_PARTITION: the one describe error that means "does not exist"
READY_WITHIN = 30.0  # seconds a created topic may take to elect a leader for every partition


def _retrying() -> AsyncRetrying:
    """A bounded poll with capped exponential backoff (20 ms doubling to 1 s, READY_WITHIN in all)."""
    return AsyncRetrying(retry=retry_if_exception_type(_NotReady), reraise=True,
                         wait=wait_exponential(multiplier=0.02, max=1.0), stop=stop_after_delay(READY_WITHIN))


class _NotReady(Exception):
    """A topic that exists but has no leader yet for some partition (retried, never shown)."""


def _ready(described: dict[str, Any], partitions: int | None) -> bool:
    parts = described.get("partitions") or []
    return (described.get("error_code", 0) == 0 and bool(parts)
            and (partitions is None or len(parts) == partitions)
            and all(p.get("error_code", 0) == 0 and p.get("leader", -1) >= 0 for p in parts))


async def _describe_ready(admin: AIOKafkaAdminClient, names: list[str],
                          partitions: dict[str, int] | None = None) -> dict[str, dict[str, Any]]:
    """Describe ``names`` until each exists with a leader for every partition.

    A topic the broker does not know (UNKNOWN_TOPIC_OR_PARTITION) is returned as
    missing when ``partitions`` is None (a reader asking); any other error, such
    as LEADER_NOT_AVAILABLE right after creation, is retried until READY_WITHIN."""
    want = partitions or {}
    found: dict[str, dict[str, Any]] = {}
    try:
        async for attempt in _retrying():
            with attempt:
                described = {d["topic"]: d for d in await admin.describe_topics(names)}
                found = {n: d for n, d in described.items() if _ready(d, want.get(n))}
                pending = [n for n in names if n not in found and not (
                    partitions is None and described.get(n, {}).get("error_code") == UNKNOWN_TOPIC)]
                if pending:
                    raise _NotReady(pending[0])
    except _NotReady as exc:
        raise ServiceUnavailable(f"topic {exc} has no leader for every partition after {READY_WITHIN:.0f} s; "
                                 "fix: check the broker's log") from None
    return found


async def ensure_topics(settings: Settings, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Returns only once every topic of ``specs`` (new or old) has a leader for
    each of its partitions, so callers can produce and consume at once."""
    specs = list(specs)
    async with admin_client(settings) as admin:
        existing = set(await admin.list_topics())
        created: list[str] = []
        for spec in (s for s in specs if s.name not in existing):
            topic = NewTopic(spec.name, spec.partitions, 1, topic_configs=dict(spec.config))
            try:
                await admin.create_topics([topic])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another process won the race; same outcome
        if specs:
            await _describe_ready(admin, [s.name for s in specs],
                                  {s.name: s.partitions for s in specs if s.name in created})
        return created


async def delete_topics(settings: Settings, names: Iterable[str]) -> None:
    """Delete ``names`` (those that exist); tests and benchmarks clean up with it."""
    wanted = list(names)
    if not wanted:
        return
    async with admin_client(settings) as admin:
        present = [n for n in wanted if n in set(await admin.list_topics())]
        if present:
            await admin.delete_topics(present)


async def topic_partitions(settings: Settings, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics``; a missing topic is a one-line ConfigError.

    A topic still electing its leaders is waited for (bounded), not reported missing."""
    names = list(topics)
    async with admin_client(settings) as admin:
        found = await _describe_ready(admin, names)
    missing = [n for n in names if n not in found]
    if missing:
        raise ConfigError(f"topic {missing[0]} does not exist; fix: run `ducats topics`")
    return [TopicPartition(n, p["partition"]) for n in names
            for p in sorted(found[n]["partitions"], key=lambda p: p["partition"])]


@contextlib.asynccontextmanager
async def _started(consumer: AIOKafkaConsumer, settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    """``consumer`` started (bounded, errors classified) for the block, then stopped."""
    try:
        await kafka_call(consumer.start(), bootstrap=settings.kafka_bootstrap)
        with kafka_errors(settings.kafka_bootstrap):
            yield consumer
    finally:
        with contextlib.suppress(Exception):
            await within(consumer.stop(), 10)


async def end_offsets(settings: Settings, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """The read_committed end offset of every partition of ``topics``."""
    tps = await topic_partitions(settings, topics)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, isolation_level="read_committed",
                                request_timeout_ms=REQUEST_TIMEOUT_MS)
    async with _started(consumer, settings):
        ends = await kafka_call(consumer.end_offsets(tps), bootstrap=settings.kafka_bootstrap)
    return {(tp.topic, tp.partition): off for tp, off in ends.items()}


async def read_since(settings: Settings, topic: str, start: dict[tuple[str, int], int],
                     timeout: float = 60) -> list[dict[str, Any]]:
    """The committed JSON records of ``topic`` from ``start`` offsets (as given by
    :func:`end_offsets` earlier) to its current end."""
    ends = await end_offsets(settings, [topic])
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, isolation_level="read_committed",
                                enable_auto_commit=False, request_timeout_ms=REQUEST_TIMEOUT_MS)
    out: list[dict[str, Any]] = []
    async with _started(consumer, settings):
        tps = [TopicPartition(t, p) for t, p in ends]
        consumer.assign(tps)
        deadline = time.monotonic() + timeout
        for tp in tps:
            consumer.seek(tp, start.get((tp.topic, tp.partition), 0))
            while await consumer.position(tp) < ends[(tp.topic, tp.partition)]:
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(f"could not read {topic} to its end in {timeout:.0f} s")
                out += [orjson.loads(r.value) for r in (await consumer.getmany(tp, timeout_ms=500)).get(tp, [])]
    return out


def make_consumer(settings: Settings, **overrides: object) -> AIOKafkaConsumer:
    """A service's consumer: read_committed, no auto-commit, bounded requests, and a fetch
    that waits at most FETCH_MAX_WAIT_MS (see there: a longer wait holds records back)."""
    options: dict[str, object] = dict(
        bootstrap_servers=settings.kafka_bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )
    options.update(overrides)
    return AIOKafkaConsumer(**options)  # type: ignore[arg-type]


def make_producer(settings: Settings, **overrides: object) -> AIOKafkaProducer:
    """An idempotent producer (acks=all, idempotence on) that batches sends."""
    options: dict[str, object] = dict(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=1 << 20,
        compression_type=None,
    )
    options.update(overrides)
    return AIOKafkaProducer(**options)  # type: ignore[arg-type]


async def wait_for_json(settings: Settings, topic: str, *, field_name: str, values: Iterable[str],
                        timeout: float) -> dict[str, dict[str, Any]]:
    """Read ``topic`` from the start until a JSON record exists for each wanted value
    of ``field_name``; return the last record seen per value.

    Raises :class:`ServiceUnavailable` naming the missing values on timeout.
    """
    wanted = set(values)
    found: dict[str, dict[str, Any]] = {}
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    async with _started(consumer, settings):
        deadline = time.monotonic() + timeout
        while not wanted <= found.keys():
            if time.monotonic() > deadline:
                missing = sorted(wanted - found.keys())
                raise ServiceUnavailable(f"no record on {topic} within {timeout:.0f} s for {missing[:5]}")
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for rec in records:
                    value = orjson.loads(rec.value)
                    if value.get(field_name) in wanted:
                        found[value[field_name]] = value
        return found
