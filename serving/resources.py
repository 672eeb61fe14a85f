"""The connections of one API process, opened and closed in the app's lifespan.

- a psycopg async pool on DATABASE_READ_URL (default DATABASE_URL), every
  session bounded by statement_timeout;
- a redis-py asyncio client with socket timeouts;
- the writer: an idempotent aiokafka producer, started in the background at
  start-up (or on the first write after a failed start), so the API serves
  reads while Kafka is down and writes again once it is back;
- the snapshot feed, the rate limiter and the guards.

Nothing here connects at import time; a service that is down at start-up
does not stop the API (its guard answers 503 until the service is back).
"""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from psycopg_pool import AsyncConnectionPool

from ducats.connect import CONNECT_TIMEOUT
from ducats.errors import ConfigError, mask_url
from ducats.kafka import make_producer
from ducats.keys import RedisKeys
from ducats.logs import get_logger
from ducats.settings import Settings
from reads.path import PathFinder
from serving.auth import ApiKeys
from serving.errors import Unavailable
from serving.feed import SnapshotFeed
from serving.guard import Guards
from serving.limiter import RateLimits
from serving.observability import PG_POOL

log = get_logger(__name__)


class Writer:
    """The producer of the input topics, (re)started on demand under the Kafka guard."""

    def __init__(self, *, settings: Settings, guards: Guards) -> None:
        self.settings, self.guards = settings, guards
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._warming: asyncio.Task[None] | None = None

    async def producer(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = make_producer(self.settings, linger_ms=0, request_timeout_ms=5000,
                                         retry_backoff_ms=50)
                try:
                    async with self.guards.kafka(max(self.settings.api_kafka_timeout, 2.0)):
                        await producer.start()
                        metadata = await producer.client.fetch_all_metadata()
                except BaseException:
                    await producer.stop()
                    raise
                missing = {self.settings.topic_mints, self.settings.topic_transactions} - metadata.topics()
                if missing:
                    await producer.stop()
                    raise Unavailable("kafka", f"topics {sorted(missing)} do not exist; fix: run ducats topics",
                                      retry_after=5)
                self._producer = producer
        return self._producer

    def warm(self) -> None:
        """Start the producer in the background at start-up, so the first POST does not pay for
        it; if Kafka is down now, the first POST after it is back starts it instead."""
        async def start() -> None:
            try:
                await self.producer()
            except Exception as exc:  # noqa: BLE001  logged; writes answer 503 until Kafka is there
                log.warning("api.producer_not_started", error=repr(exc))

        self._warming = asyncio.create_task(start(), name="producer-warm-up")

    async def publish(self, topic: str, value: bytes, key: bytes) -> Any:
        """Send one record and wait for its acknowledgement, within the Kafka budget."""
        producer = await self.producer()
        async with self.guards.kafka():
            return await producer.send_and_wait(topic, value, key=key)

    async def stop(self) -> None:
        if self._warming is not None and not self._warming.done():
            self._warming.cancel()
            with contextlib.suppress(BaseException):
                await self._warming
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), 5)


@dataclass(slots=True)
class Resources:
    settings: Settings
    keys: RedisKeys
    pool: AsyncConnectionPool
    redis: aioredis.Redis
    guards: Guards
    feed: SnapshotFeed
    writer: Writer
    limits: RateLimits
    api_keys: ApiKeys
    paths: PathFinder
    pool_stats: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, settings: Settings) -> Resources:
        guards = Guards(settings)
        keys = RedisKeys.of(settings)
        pool = AsyncConnectionPool(
            settings.read_url, min_size=2, max_size=16, open=False, timeout=settings.api_pg_pool_wait,
            # 0: a failed background connect gives up at once, and the next request that waits
            # for a connection grows the pool again, so it reconnects on demand, with no backoff
            # to wait out once PostgreSQL is back (the breaker keeps requests off it meanwhile).
            reconnect_timeout=0,
            kwargs={"connect_timeout": CONNECT_TIMEOUT, "autocommit": True,
                    "options": f"-c timezone=UTC -c statement_timeout={int(settings.api_pg_timeout * 1000) + 100}"
                               " -c jit=off -c default_transaction_read_only=on"})
        await pool.open(wait=False)
        try:
            client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=CONNECT_TIMEOUT,
                                             socket_timeout=max(1.0, settings.api_redis_timeout * 4),
                                             health_check_interval=10)
        except ValueError as exc:
            raise ConfigError(f"REDIS_URL {mask_url(settings.redis_url)} is not a valid Redis URL") from exc
        feed = SnapshotFeed(client=client, keys=keys, guard=guards.redis, refresh=settings.api_refresh)
        feed.start()
        log.info("api.resources", postgres=mask_url(settings.read_url), redis=mask_url(settings.redis_url),
                 kafka=settings.kafka_bootstrap)
        writer = Writer(settings=settings, guards=guards)
        writer.warm()
        return cls(settings=settings, keys=keys, pool=pool, redis=client, guards=guards, feed=feed,
                   writer=writer, pool_stats=asyncio.create_task(_watch_pool(pool), name="pool-stats"),
                   limits=RateLimits(settings=settings, guard=guards.redis, keys=keys, client=client),
                   api_keys=ApiKeys.parse(settings.api_keys),
                   paths=PathFinder(pool=pool, neo4j_url=settings.neo4j_url))

    async def close(self) -> None:
        if self.pool_stats is not None:
            self.pool_stats.cancel()
        await self.feed.stop()
        await self.writer.stop()
        await self.paths.close()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        with contextlib.suppress(Exception):
            await self.pool.close(timeout=5)


async def _watch_pool(pool: AsyncConnectionPool, every: float = 0.5) -> None:
    """The pool's size, free connections and waiting requests as gauges (a pool that
    loses connections shows as size > 0, available 0, nothing running)."""
    while True:
        stats = pool.get_stats()
        PG_POOL.labels("size").set(stats.get("pool_size", 0))
        PG_POOL.labels("available").set(stats.get("pool_available", 0))
        PG_POOL.labels("waiting").set(stats.get("requests_waiting", 0))
        await asyncio.sleep(every)
