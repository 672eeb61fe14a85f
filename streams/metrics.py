"""Metric agents over the accepted log, and the snapshot publisher.

The agent is thin: it takes batches of accepted events (``take_events``, acked
only after the batch is processed), splits them by source partition, folds each
part into that partition's metrics record and its network edges (pure
functions in ducats.domain), writes each changed table key once, to the
changelog partition of its source partition, and hands the results to the
Redis and Postgres sinks.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
import mode
import orjson
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from ducats import observability as obs
from ducats.domain import metrics as m
from ducats.domain.network import Edge, edge_key, fold_edges
from ducats.keys import RedisKeys
from ducats.logs import get_logger
from ducats.settings import Settings
from reads import snapshot as reads
from reads.census import census
from schemas.ducat_id import ducat_ints
from sinks.postgres import metrics as pg
from sinks.redis.hot_cache import HotCache
from sinks.redis.metrics import WORKER, MetricStore

log = get_logger(__name__)


class Resources(mode.Service):
    """Redis and Postgres clients of a worker: opened before the agents start,
    closed after they stop (the app's first dependency)."""

    redis: aioredis.Redis
    pool: AsyncConnectionPool
    store: MetricStore
    hot: HotCache

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        self.settings = settings
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        # Created here, not in __init__: the pool needs the running event loop.
        self.redis = aioredis.Redis.from_url(self.settings.redis_url)
        await self.redis.ping()
        self.pool = AsyncConnectionPool(self.settings.database_url, min_size=1, max_size=4, open=False,
                                        kwargs={"options": "-c timezone=UTC"})
        await self.pool.open(wait=True, timeout=30)
        self.store = MetricStore(settings=self.settings, client=self.redis)
        self.hot = HotCache(settings=self.settings, client=self.redis)

    async def on_stop(self) -> None:
        await self.pool.close()
        await self.redis.aclose()


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


def fold_partition(*, partition: int, events: list[dict[str, Any]], metrics_table: faust.types.TableT,
                   edges_table: faust.types.TableT, treasury: frozenset[str]) -> Folded:
    """Fold one partition's events into its record and edges; write each changed key once."""
    edges: dict[str, Edge] = {}
    for e in events:
        if "transactionId" in e:
            key = edge_key(e["from"], e["to"])
            if key not in edges:
                edges[key] = Edge.from_dict(edges_table.data.get(key))
    changed = fold_edges(edges, events)
    new_edge_seqs = frozenset(edges[k].first_seq for k in changed)
    pm = m.PartitionMetrics.from_dict(metrics_table.data.get(f"p{partition}"))
    fresh = sum(m.apply(pm, e, treasury, new_edge_seqs) for e in events)
    for key in changed:
        _write(edges_table, partition, key, edges[key].to_dict())
    if fresh:
        _write(metrics_table, partition, f"p{partition}", pm.to_dict())
    return Folded(partition=partition, events=events, pm=pm, edges={k: edges[k] for k in changed}, fresh=fresh)


async def publish_folds(res: Resources, folds: Sequence[Folded]) -> None:
    """One Postgres query and one Redis pipeline for the whole batch: the
    partials, then the hot cache (moved ducats, recent transactions, edges)."""
    events = [e for f in folds for e in f.events]
    moved = sorted({i for e in events if "ducatIds" in e for i in ducat_ints(e["ducatIds"])})
    rows = await pg.moved_ducats(res.pool, moved)
    watermark = max(f.pm.watermark for f in folds)
    edges = {k: v for f in folds for k, v in f.edges.items()}
    async with res.redis.pipeline(transaction=False) as pipe:
        for f in folds:
            await res.store.write_partial(f.partition, f.pm, pipe=pipe)
        await res.hot.record_ducats(rows, pipe=pipe)
        await res.hot.record_transactions(events, when={e["seq"]: m.epoch(e["timestamp"]) for e in events},
                                          watermark=watermark, pipe=pipe)
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

    async def tick(self, now: float) -> dict[str, Any] | None:
        """Refresh when a partial moved, and at least every snapshot_interval."""
        partials = await self.res.store.read_partials()
        seqs = {p: pm.seq for p, pm in partials.items()}
        due = now - self.last_full >= self.settings.snapshot_interval
        if seqs == self.last_seqs and not due:
            return None
        self.last_seqs = seqs
        snapshot = await self._replace(partials)
        obs.SNAPSHOT_VERSION.set(snapshot["version"])
        obs.SNAPSHOT_SEQ.set(snapshot["position"]["seq"])
        if due:
            self.last_full = now
            await self._publish(snapshot, partials)
        return snapshot

    async def _replace(self, partials: dict[int, m.PartitionMetrics]) -> dict[str, Any]:
        r, keys = self.res.redis, RedisKeys.of(self.settings)
        snapshot = m.build_snapshot(
            partials=partials, census=await census(self.res.pool),
            top=await reads.top_circulating(r, keys, 10), active_edges=await reads.active_edges(r, keys),
            now=dt.datetime.now(dt.UTC).isoformat())
        return await self.res.store.replace_snapshot(snapshot)

    async def _publish(self, snapshot: dict[str, Any], partials: dict[int, m.PartitionMetrics]) -> None:
        days = [d for d in m.daily_rollups(partials.values(), snapshot["circulation"])
                if self.published_days.get(d["date"]) != d]
        await self.metrics_topic.send(key=b"snapshot", value=orjson.dumps(snapshot))
        for d in days:
            await self.daily_topic.send(key=d["date"].encode(), value=orjson.dumps(d))
            self.published_days[d["date"]] = d
        await pg.save_history(self.res.pool, snapshot, days)


def register(app: faust.App, settings: Settings, res: Resources) -> None:
    accepted = app.topic(settings.topic_accepted, value_serializer="raw", key_serializer="raw")
    # Keys are strings ("p3", "alice→bob"), values plain dicts: both JSON in the changelog.
    schema: faust.Schema = faust.Schema(key_serializer="json", value_serializer="json")
    metrics_table = app.Table("partition-metrics", schema=schema)
    edges_table = app.Table("network-edges", schema=schema)
    publisher = SnapshotPublisher(
        settings=settings, res=res,
        metrics_topic=app.topic(settings.topic_metrics, key_serializer="raw", value_serializer="raw"),
        daily_topic=app.topic(settings.topic_metrics_daily, key_serializer="raw", value_serializer="raw"))

    @app.agent(accepted)
    async def fold_accepted(stream: faust.StreamT[bytes]) -> None:
        # take_events is on the Stream class, not on the StreamT protocol.
        async for batch in cast(faust.Stream[bytes], stream).take_events(settings.metrics_batch, within=0.05):
            started = time.perf_counter()
            by_partition: dict[int, list[dict[str, Any]]] = {}
            for ev in batch:
                by_partition.setdefault(ev.message.partition, []).append(orjson.loads(ev.value))
            folds = [fold_partition(partition=p, events=events, metrics_table=metrics_table,
                                    edges_table=edges_table, treasury=settings.treasury_set)
                     for p, events in sorted(by_partition.items())]
            await publish_folds(res, folds)
            took = time.perf_counter() - started
            obs.METRICS_BATCH_SECONDS.observe(took)
            for f in folds:
                obs.METRICS_EVENTS.labels(str(f.partition), "yes").inc(f.fresh)
                obs.METRICS_EVENTS.labels(str(f.partition), "no").inc(len(f.events) - f.fresh)
            log.info("metrics.batch", events=len(batch), fresh=sum(f.fresh for f in folds),
                     partitions=len(folds), ms=round(took * 1000, 1))

    @app.timer(0.1, on_leader=True)
    async def refresh_snapshot() -> None:
        await publisher.tick(asyncio.get_running_loop().time())

    @app.timer(1.0)
    async def heartbeat() -> None:
        await res.hot.refresh_threshold()
        # Timers start only once table recovery is over, so this key also says "ready".
        owned = sorted(tp.partition for tp in app.consumer.assignment() if tp.topic == settings.topic_accepted)
        await res.redis.set(RedisKeys.of(settings).worker(WORKER), orjson.dumps(
            {"worker": WORKER, "partitions": owned, "at": dt.datetime.now(dt.UTC).isoformat()}), ex=5)

    @app.timer(5.0)
    async def rewrite_partials() -> None:
        # Heals a Redis that restarted empty: each worker re-sends its own partitions.
        for key, raw in list(metrics_table.data.items()):
            await res.store.write_partial(int(str(key)[1:]), m.PartitionMetrics.from_dict(raw))

