"""A private place to run a benchmark: its own database and its own topics.

The database ``bench_<tag>`` is created through the configured one and
migrated; the topics get the prefix ``bench<tag>`` (and the app id
``ducats-bench<tag>``, so the ledger's consumer group and transactional id are
private too). :meth:`BenchEnv.close` drops and deletes all of it, whatever
happened: the database, and every topic under the prefix or the app id (those
the benchmark made, and those its processes made, such as a Faust worker's
changelog and assignor topics); ``keep`` leaves it for a post-mortem.
"""
from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from bench.errors import BenchError
from ducats.kafka import TopicSpec, admin_client, delete_topics, ensure_topics
from ducats.procs import free_port
from ducats.settings import Settings
from sinks.postgres.migrate import migrate
from streams.topics import pipeline_topics

ADMIN_TIMEOUT_MS = 15_000


def params_overrides(ledger_batch: int | None) -> dict[str, object]:
    """Settings a benchmark's options override."""
    if ledger_batch is None:
        return {}
    if not 1 <= ledger_batch <= 100_000:
        raise BenchError(f"--ledger-batch must be 1..100000, got {ledger_batch}")
    return {"ledger_batch": ledger_batch}


@dataclass(kw_only=True)
class BenchEnv:
    """Settings for the private database and topics, and what to remove afterwards."""

    base: Settings
    settings: Settings
    database: str
    topics: list[str] = field(default_factory=list)
    keep: bool = False

    @classmethod
    async def create(cls, base: Settings, *, keep: bool = False, **overrides: object) -> BenchEnv:
        """Create and migrate ``bench_<tag>`` and the pipeline's topics under a fresh prefix."""
        tag = uuid.uuid4().hex[:10]
        database = f"bench_{tag}"
        url = psycopg.conninfo.make_conninfo(base.database_url, dbname=database)
        settings = base.model_copy(update={"database_url": url, "topic_prefix": f"bench{tag}",
                                           "app_id": f"ducats-bench{tag}", **overrides})
        env = cls(base=base, settings=settings, database=database, keep=keep)
        try:
            await asyncio.to_thread(env._create_database)
            await env.add_topics(pipeline_topics(settings))
        except BaseException:
            await env.close()
            raise
        return env

    def _create_database(self) -> None:
        with psycopg.connect(self.base.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        migrate(self.settings.database_url, timescale=self.settings.timescale)

    async def add_topics(self, specs: list[TopicSpec]) -> None:
        self.topics += [s.name for s in specs]  # recorded first: a half-made set is still deleted
        await ensure_topics(self.settings, specs)

    async def close(self) -> None:
        if self.keep:
            return
        try:
            await asyncio.wait_for(self._delete_topics(), ADMIN_TIMEOUT_MS / 1000 * 2)
        finally:
            await asyncio.to_thread(self._drop_database)

    def owns(self, topic: str) -> bool:
        """Whether ``topic`` is this run's: made by it, or named under its prefix or app id."""
        return topic in self.topics or topic.startswith((f"{self.settings.topic_prefix}.",
                                                         f"{self.settings.app_id}-"))

    async def _delete_topics(self) -> None:
        async with admin_client(self.base) as admin:
            doomed = [t for t in await admin.list_topics() if self.owns(t)]
        await delete_topics(self.base, doomed)

    def _drop_database(self) -> None:
        with psycopg.connect(self.base.database_url, autocommit=True, connect_timeout=15) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database)))

    def ledger_env(self, **extra: str) -> dict[str, str]:
        """The environment of a ``ducats ledger`` or ``ducats worker`` subprocess on
        this private set-up (its own web port, metrics on any free port)."""
        return self.settings.to_env(**{"DUCATS_LOG_FORMAT": "json", "DUCATS_LOG_LEVEL": "info",
                                       "DUCATS_WORKER_WEB_PORT": str(free_port()), "DUCATS_LEDGER_METRICS_PORT": "0",
                                       "DUCATS_WORKER_METRICS_PORT": "0", "DUCATS_ANALYZE_METRICS_PORT": "0",
                                       "DUCATS_CASCADES_METRICS_PORT": "0", "DUCATS_MIRROR_METRICS_PORT": "0",
                                       **extra})
