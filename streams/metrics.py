"""Metric agents over the accepted log, and the snapshot publisher.

The agent is thin. It reads the batches topic, where the ledger writes each
batch's accepted events of a partition as one record (docs/throughput.md), so
that Faust handles one record per batch instead of one per event. It takes
several of those records at a time (``take_events``, acked only after they are
processed), groups their events by source partition, writes their network
edges to PostgreSQL (sinks/postgres/edges.py, docs/network.md), folds each part
into that partition's metrics record (pure functions in ducats.domain), writes
that record once, to the changelog partition of its source partition, and hands
the results to the Redis and Postgres sinks.

Exactness does not rest on Faust's offsets. The records of a partition form a
chain (schemas/batches.py), and a record is folded only if it continues what the
partition's metrics record holds. One that follows a record never folded (Faust
dropped it, a commit went past it, a table came back older: whatever the cause)
is a gap: it is skipped, counted (``ducats_metrics_gaps_total``), and the partition
is reread from the record after the last one folded. That position is kept in the
metrics record itself (``offset``), in the same changelog record as the counts, and
after every table recovery the worker reads on from there, not from the group's
committed offset (streams/transport.py, ``stream_positions``).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import faust
import mode
import orjson
import redis.asyncio as aioredis
from aiokafka.errors import KafkaError
from faust.types import TP
from psycopg_pool import AsyncConnectionPool

from ducats import observability as obs
from ducats.connect import pg_pool, redis_connect
from ducats.domain import metrics as m
from ducats.domain.network import Edge
from ducats.health import Readiness
from ducats.keys import RedisKeys
from ducats.logs import get_logger
from ducats.settings import Settings
from reads import snapshot as reads
from reads.census import census
from schemas import batches
from sinks.postgres import edges as edges_sink
from sinks.postgres import metrics as pg
from sinks.postgres.edges import Network
from sinks.redis.hot_cache import HotCache
from sinks.redis.metrics import WORKER, MetricStore
from streams.outages import WorkerHealth

log = get_logger(__name__)
POOL_TIMEOUT = 2.0  # seconds a query waits for a pooled connection
HEAL_WAIT = 10.0  # seconds the snapshot waits for partials lost in a Redis restart
REREAD_EVERY = 2.0  # seconds before a partition still in a gap is sought back again
# The tables' changelogs are compacted, but Kafka compacts only closed segments, and a
# segment closes after 7 days or 256 MB by default: a restarted worker (memory store)
# read back every record its tables ever wrote, and took longer the longer it had run.
# Short segments let the cleaner keep each changelog near one record per key
# (README, "Recovery and rebalancing"). Applied when Faust creates the topics.
CHANGELOG_CONFIG = {"segment.ms": "10000", "min.cleanable.dirty.ratio": "0.1"}


class Resources(mode.Service):
    """Redis and Postgres clients of a worker, and its health: opened before the
    agents start, closed after they stop (the app's first dependency)."""

    redis: aioredis.Redis
    pool: AsyncConnectionPool
    store: MetricStore
    hot: HotCache
    health: WorkerHealth

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        self.settings = settings
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        # Created here, not in __init__: the pool needs the running event loop.
        s = self.settings
        self.readiness = Readiness(component="worker", status_dir=s.run_dir)
        self.health = WorkerHealth(settings=s, readiness=self.readiness)
        # A service lost between run_worker's check and here is waited for.
        self.redis = await self.health.ride_out("connect", lambda: redis_connect(s.redis_url))
        self.pool = await self.health.ride_out("connect", lambda: pg_pool(s.database_url, options="-c timezone=UTC"))
        # How long a query waits for a connection (psycopg_pool's default, 30 s, would
        # hold a batch that long before the outage is even noticed).
        self.pool.timeout = POOL_TIMEOUT
        self.store = MetricStore(settings=s, client=self.redis)
        self.hot = HotCache(settings=s, client=self.redis)

    async def on_stop(self) -> None:
        await self.pool.close()
        await self.redis.aclose()
        self.readiness.close()


class VersionedTable(faust.Table):  # type: ignore[type-arg]
    """A table whose values carry the ledger seq they are at (``version``), and whose
    recovery keeps, per key, the value at the highest seq it has seen.

    Faust's recovery applies changelog records over what the table holds, last one
    wins. After a rebalance the memory store still holds this worker's own writes,
    and those not yet in Kafka are newer than the changelog's last record for their
    key: applied over them, the older record took the table back, and the events in
    between were never counted (the consumer reads on from its committed offset).
    Folding an event is idempotent per seq, so the highest seq is always right.
    """

    version: ClassVar[str]

    def apply_changelog_batch(self, batch: Iterable[faust.types.EventT]) -> None:
        newest: dict[Any, Any] = {}
        kept = []
        for event in batch:
            key, value = self._to_key(event.key), event.value
            if isinstance(value, dict):
                have = newest.get(key, self.data.get(key))
                if have is not None and have[self.version] > value[self.version]:
                    continue
                newest[key] = value
            kept.append(event)
        super().apply_changelog_batch(kept)


class MetricsTable(VersionedTable):
    version = "seq"  # m.PartitionMetrics.seq


def _write(table: faust.types.TableT, partition: int, key: str, value: dict[str, Any]) -> None:
    """Set ``key`` and send its changelog record to ``partition``.

    Table.__setitem__ takes the partition from the current event, which a
    batch from take_events does not set; the actor's partition is the same one."""
    table.data[key] = value
    table.send_changelog(partition, key, value)


@dataclass(slots=True, kw_only=True)
class Folded:
    """One partition's part of a batch, folded and written to the tables."""

    partition: int
    events: list[dict[str, Any]]
    pm: m.PartitionMetrics
    edges: dict[str, Edge]
    fresh: int
    when: dict[int, int] = field(default_factory=dict)  # event time of each new transfer, by seq
    records: list[list[dict[str, Any]]] = field(default_factory=list)  # ``events``, as their batch records held them


def fold_partition(*, partition: int, events: list[dict[str, Any]], offset: int, metrics_table: faust.types.TableT,
                   treasury: frozenset[str], network: Network,
                   records: list[list[dict[str, Any]]] | None = None) -> Folded:
    """Fold one partition's events (of its batch records up to ``offset``) into its record,
    with the edges as the edges sink stored them (``network``); write the record once."""
    pm = m.PartitionMetrics.from_dict(metrics_table.data.get(f"p{partition}"))
    when: dict[int, int] = {}
    fresh = m.fold_events(pm, events, treasury, network.new_seqs, when)
    if fresh:
        pm.offset = max(pm.offset, offset)
        _write(metrics_table, partition, f"p{partition}", pm.to_dict())
    return Folded(partition=partition, events=events, pm=pm, edges=network.edges.get(partition, {}), fresh=fresh,
                  when=when, records=[events] if records is None else records)


@dataclass(slots=True)
class Part:
    """The events of one partition's records in a batch that continue its chain."""

    folded: int                                   # the seq the partition is folded up to, these included
    events: list[dict[str, Any]] = field(default_factory=list)
    offset: int = -1                              # of the last of those records
    records: list[list[dict[str, Any]]] = field(default_factory=list)  # the same events, record by record


class ChainReader:
    """Sorts a batch of records into what continues each partition's chain and what
    follows a gap, and rereads a partition in a gap from after its last folded record.

    A partition stays "in a gap" until a record that continues its chain is folded.
    Until then it is sought back again every REREAD_EVERY seconds, from the agent when
    more records after the gap arrive and from a timer (:meth:`retry`) when none do:
    records fetched before a seek can still reach Faust after it, and Faust then drops
    the reread ones as already read (its ``_read_offset``), so one seek may not be enough.
    """

    def __init__(self, *, app: faust.App, topic: str, metrics_table: faust.types.TableT) -> None:
        self.app, self.topic, self.metrics_table = app, topic, metrics_table
        self.gapped: dict[int, float] = {}  # partition in a gap -> when it was last sought back

    def folded(self, partition: int) -> dict[str, Any]:
        return cast(dict[str, Any], self.metrics_table.data.get(f"p{partition}") or {})

    def sort(self, batch: Sequence[faust.types.EventT]) -> tuple[dict[int, Part], dict[int, int]]:
        """The parts to fold, and per partition in a gap the offset of its first record there."""
        parts: dict[int, Part] = {}
        gaps: dict[int, int] = {}
        for ev in batch:
            p, offset = ev.message.partition, ev.message.offset
            record = batches.decode(ev.value)
            part = parts.get(p) or parts.setdefault(p, Part(folded=int(self.folded(p).get("seq", 0))))
            link = record.link(part.folded)
            if link is batches.Link.NEXT:
                part.events.extend(record.events)
                part.records.append(record.events)
                part.folded, part.offset = record.last, offset
                self.gapped.pop(p, None)
            elif link is batches.Link.GAP:
                gaps.setdefault(p, offset)
                obs.METRICS_GAPS.labels(str(p)).inc()
        return {p: part for p, part in parts.items() if part.events}, gaps

    def position(self, partition: int) -> int | None:
        """Where to read ``partition`` on: after its last folded record (None: not known)."""
        offset = int(self.folded(partition).get("offset", -1))
        return offset + 1 if offset >= 0 else None

    def positions(self, assigned: Iterable[Any]) -> dict[Any, int]:
        """The read position of each assigned partition of the topic that has one."""
        out = {tp: self.position(tp.partition) for tp in assigned if tp.topic == self.topic}
        return {tp: offset for tp, offset in out.items() if offset is not None}

    async def reread(self, gaps: Mapping[int, int | None], now: float) -> None:
        """Seek each partition in ``gaps`` back to after its last folded record, unless that
        was done less than REREAD_EVERY ago (the records in flight then still come)."""
        for p, at in sorted(gaps.items()):
            last = self.gapped.get(p)
            if last is not None and now - last < REREAD_EVERY:
                continue
            target = self.position(p) or 0
            log.warning("metrics.gap", partition=p, record_offset=at, reread_from=target,
                        folded_seq=int(self.folded(p).get("seq", 0)), again=last is not None)
            self.gapped[p] = now
            try:
                await self.app.consumer.seek_wait({TP(self.topic, p): target})
            except (KafkaError, TimeoutError) as exc:  # revoked meanwhile: its next owner reads on from the table
                log.warning("metrics.reread_failed", partition=p, error=repr(exc))

    async def retry(self, now: float, assigned: AbstractSet[int]) -> None:
        """The timer's part: partitions still in a gap, and still ours, are sought back again."""
        for p in [p for p in self.gapped if p not in assigned]:
            del self.gapped[p]  # revoked: the new owner reads on from the table
        await self.reread({p: None for p in self.gapped}, now)


def _event_times(folds: Sequence[Folded]) -> dict[int, int]:
    """The event time of each transfer of ``folds``, by seq: the fold's, else parsed."""
    when: dict[int, int] = {}
    for f in folds:
        when.update(f.when)
        for e in f.events:
            if "transactionId" in e and e["seq"] not in when:
                when[e["seq"]] = m.epoch(e["timestamp"])
    return when


async def publish_folds(res: Resources, folds: Sequence[Folded]) -> None:
    """For the whole batch, one Redis pipeline: the partials, then the hot cache's recent
    transactions and edges. (Its ducats are the ducat-state sink's, with their own seq:
    docs/throughput.md, step 5; the snapshot no longer waits for the sink.)"""
    watermark = max(f.pm.watermark for f in folds)
    edges = {k: v for f in folds for k, v in f.edges.items()}
    async with res.redis.pipeline(transaction=False) as pipe:
        for f in folds:
            await res.store.write_partial(f.partition, f.pm, pipe=pipe)
        await res.hot.record_transactions([(f.partition, r) for f in folds for r in f.records],
                                          when=_event_times(folds), watermark=watermark, pipe=pipe)
        await res.hot.record_edges(edges, when={k: m.epoch(v.last_ts) for k, v in edges.items()},
                                   watermark=watermark, pipe=pipe)
        await pipe.execute()


class SnapshotPublisher:
    """Merges the partials into the Redis snapshot, publishes it and the daily
    rollups. Runs on the leader worker only."""

    def __init__(self, *, settings: Settings, res: Resources, metrics_topic: faust.TopicT,
                 daily_topic: faust.TopicT) -> None:
        self.settings, self.res = settings, res
        self.metrics_topic, self.daily_topic = metrics_topic, daily_topic
        self.last_seqs: dict[int, int] | None = None
        self.last_full = 0.0
        self.published_days: dict[str, dict[str, Any]] = {}
        self.behind_since: float | None = None

    async def tick(self, now: float) -> dict[str, Any] | None:
        """Refresh when a partial moved, and at least every snapshot_interval.

        What it remembers (the seqs, the last full publication, the days sent) is
        updated only after the step succeeded, so a tick cut short by an outage is
        simply done again by the next one."""
        partials = await self.res.store.read_partials()
        seqs = {p: pm.seq for p, pm in partials.items()}
        due = now - self.last_full >= self.settings.snapshot_interval
        if seqs == self.last_seqs and not due or self._healing(seqs, now):
            return None
        snapshot = await self._replace(partials)
        self.last_seqs = seqs
        obs.SNAPSHOT_VERSION.set(snapshot["version"])
        obs.SNAPSHOT_SEQ.set(snapshot["position"]["seq"])
        if due:
            await self._publish(snapshot, partials)
            self.last_full = now
        return snapshot

    def _healing(self, seqs: dict[int, int], now: float) -> bool:
        """Redis lost partials it had (it restarted empty): wait, up to HEAL_WAIT seconds,
        for the workers to write them again rather than publish a snapshot that went back."""
        behind = self.last_seqs is not None and any(seqs.get(p, -1) < q for p, q in self.last_seqs.items())
        if not behind:
            self.behind_since = None
            return False
        if self.behind_since is None:
            self.behind_since = now
            log.warning("snapshot.healing", missing=sorted(p for p, q in (self.last_seqs or {}).items()
                                                         if seqs.get(p, -1) < q))
        return now - self.behind_since < HEAL_WAIT

    async def _replace(self, partials: dict[int, m.PartitionMetrics]) -> dict[str, Any]:
        r, keys = self.res.redis, RedisKeys.of(self.settings)
        top, top_seq = await reads.top_circulating(r, keys, 10)
        snapshot = m.build_snapshot(
            partials=partials, census=await census(self.res.pool), top=top, top_seq=top_seq,
            active_edges=await reads.active_edges(r, keys), now=dt.datetime.now(dt.UTC).isoformat())
        return await self.res.store.replace_snapshot(snapshot)

    async def _publish(self, snapshot: dict[str, Any], partials: dict[int, m.PartitionMetrics]) -> None:
        days = [d for d in m.daily_rollups(partials.values(), snapshot["circulation"])
                if self.published_days.get(d["date"]) != d]
        await pg.save_history(self.res.pool, snapshot, days)  # first: a day is "published" once it is stored
        await self.metrics_topic.send(key=b"snapshot", value=orjson.dumps(snapshot))
        for d in days:
            await self.daily_topic.send(key=d["date"].encode(), value=orjson.dumps(d))
            self.published_days[d["date"]] = d


def register(app: faust.App, settings: Settings, res: Resources) -> None:
    accepted = app.topic(settings.topic_accepted_batches, value_serializer="raw", key_serializer="raw")
    # Keys are strings ("p3"), values plain dicts: both JSON in the changelog. The edges
    # are in PostgreSQL (sinks/postgres/edges.py), not in a table: docs/network.md.
    schema: faust.Schema = faust.Schema(key_serializer="json", value_serializer="json")
    # app.Table builds conf.Table; these are built the same way, with their own class.
    metrics_table = MetricsTable(app, name="partition-metrics", beacon=app.tables.beacon, schema=schema,
                                 extra_topic_configs=CHANGELOG_CONFIG)
    app.tables.add(metrics_table)
    publisher = SnapshotPublisher(
        settings=settings, res=res,
        metrics_topic=app.topic(settings.topic_metrics, key_serializer="raw", value_serializer="raw"),
        daily_topic=app.topic(settings.topic_metrics_daily, key_serializer="raw", value_serializer="raw"))

    reader = ChainReader(app=app, topic=settings.topic_accepted_batches, metrics_table=metrics_table)
    # After every table recovery the consumer reads on from here (streams/transport.py, seek_to_committed).
    app.stream_positions = reader.positions  # type: ignore[attr-defined]

    @app.agent(accepted)
    async def fold_accepted(stream: faust.StreamT[bytes]) -> None:
        # take_events is on the Stream class, not on the StreamT protocol.
        async for batch in cast(faust.Stream[bytes], stream).take_events(settings.metrics_batch, within=0.05):
            started = time.perf_counter()
            parts, gaps = reader.sort(batch)  # a record: one ledger batch's accepted events of its partition
            sorted_at = time.perf_counter()
            # The edges first, in PostgreSQL, so that the fold counts new edges from what is stored ...
            network = Network()
            if parts:
                network = await res.health.ride_out("edges", functools.partial(
                    edges_sink.write, res.pool, {p: part.events for p, part in parts.items()}))
            edges_at = time.perf_counter()
            # ... folded once (the table writes and their changelog records happen here) ...
            folds = [fold_partition(partition=p, events=part.events, offset=part.offset, metrics_table=metrics_table,
                                    treasury=settings.treasury_set, network=network, records=part.records)
                     for p, part in sorted(parts.items())]
            folded_at = time.perf_counter()
            # ... published until it succeeds: the batch is acked only after this returns.
            if folds:
                await res.health.ride_out("publish", functools.partial(publish_folds, res, folds))
            if gaps:
                await reader.reread(dict(gaps), time.monotonic())
            took = time.perf_counter() - started
            obs.METRICS_BATCH_SECONDS.observe(took)
            for f in folds:
                obs.METRICS_EVENTS.labels(str(f.partition), "yes").inc(f.fresh)
                obs.METRICS_EVENTS.labels(str(f.partition), "no").inc(len(f.events) - f.fresh)
            log.info("metrics.batch", events=len(batch), fresh=sum(f.fresh for f in folds),
                     partitions=len(folds), gaps=len(gaps), ms=round(took * 1000, 1),
                     decode_ms=round((sorted_at - started) * 1000, 1), edges_ms=round((edges_at - sorted_at) * 1000, 1),
                     fold_ms=round((folded_at - edges_at) * 1000, 1))

    # The timers try once per tick; an outage makes them skip (with backoff), never crash.
    @app.timer(0.1, on_leader=True)
    async def refresh_snapshot() -> None:
        now = asyncio.get_running_loop().time()
        await res.health.attempt("snapshot", lambda: publisher.tick(now))

    @app.timer(REREAD_EVERY / 2)
    async def reread_gaps() -> None:
        if reader.gapped:
            owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == settings.topic_accepted_batches}
            await reader.retry(time.monotonic(), owned)

    async def beat() -> None:
        owned = sorted(tp.partition for tp in app.consumer.assignment()
                       if tp.topic == settings.topic_accepted_batches)
        await res.redis.set(RedisKeys.of(settings).worker(WORKER), orjson.dumps(
            {"worker": WORKER, "partitions": owned, "at": dt.datetime.now(dt.UTC).isoformat()}), ex=5)

    @app.timer(1.0)
    async def heartbeat() -> None:
        # Timers start only once table recovery is over, so this key also says "ready".
        if await res.health.attempt("heartbeat", beat):
            res.health.recovered()

    async def rewrite() -> None:
        records = {int(str(key)[1:]): m.PartitionMetrics.from_dict(raw) for key, raw in list(metrics_table.data.items())}
        stored = await res.store.stored_seqs(sorted(records))
        for p, pm in records.items():
            if stored[p] < pm.seq:
                await res.store.write_partial(p, pm)

    @app.timer(1.0)
    async def rewrite_partials() -> None:
        # Heals a Redis that restarted empty: each worker re-sends the partitions its
        # tables hold that Redis holds less of (one HMGET a second otherwise).
        await res.health.attempt("partials", rewrite)
