"""`ducats mirror`: keeps Neo4j a copy of the holder network (sinks/neo4j.py),
a pass every ``--every`` seconds. Needs NEO4J_URL; the pipeline runs without it."""
from __future__ import annotations

import asyncio
import time

from neo4j.exceptions import Neo4jError, ServiceUnavailable as Neo4jUnavailable

from ducats import observability as obs
from ducats.connect import pg_connect, pg_errors
from ducats.errors import ConfigError, DucatsError, ServiceUnavailable
from ducats.logs import get_logger
from ducats.settings import Settings
from sinks import neo4j as mirror

log = get_logger(__name__)


async def run(settings: Settings, *, every: float = 1.0, stop: asyncio.Event | None = None,
              once: bool = False) -> int:
    """Mirror until ``stop`` (or one pass with ``once``); returns the edges sent in the last pass."""
    if not settings.neo4j_url:
        raise ConfigError("NEO4J_URL is not set; fix: `ducats up neo4j` and set NEO4J_URL=bolt://127.0.0.1:17687")
    stop = stop or asyncio.Event()
    drv = mirror.driver(settings.neo4j_url)
    conn = await pg_connect(settings.database_url, autocommit=True)
    sent = 0
    try:
        try:
            await mirror.ensure_schema(drv)
        except (Neo4jUnavailable, OSError) as exc:
            raise ServiceUnavailable(f"Neo4j at {settings.neo4j_url} is not answering: {exc}; "
                                     "fix: start it (`ducats up neo4j`) or set NEO4J_URL") from exc
        while True:
            started = time.perf_counter()
            try:
                with pg_errors(settings.database_url, session=True):
                    sent = await mirror.mirror_once(conn, drv)
            except (Neo4jUnavailable, Neo4jError, OSError) as exc:
                if once:
                    raise ServiceUnavailable(f"Neo4j at {settings.neo4j_url}: {exc}") from exc
                log.warning("mirror.waiting", error=str(exc))
            except DucatsError as exc:
                if once or not exc.retriable:
                    raise
                log.warning("mirror.waiting", error=str(exc))
                await conn.close()
                conn = await pg_connect(settings.database_url, autocommit=True)
            obs.MIRROR_SECONDS.observe(time.perf_counter() - started)
            obs.MIRROR_EDGES.inc(sent)
            if sent:
                log.info("mirror.pass", edges=sent, ms=round((time.perf_counter() - started) * 1000, 1))
            if once:
                return sent
            try:
                await asyncio.wait_for(stop.wait(), timeout=every)
                return sent
            except TimeoutError:
                pass
    finally:
        await conn.close()
        await drv.close()
