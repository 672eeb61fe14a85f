"""The snapshot feed: an in-process copy of the metric snapshot and the top of
the hot cache, refreshed on each new snapshot version.

One background task per API process polls ``<p>:metrics:snapshot:version``
every DUCATS_API_REFRESH seconds (one GET of a few bytes). When the version
moves it reads the snapshot and the 100 most-circulating ducats once,
serializes the answers once, and wakes every Server-Sent-Events subscriber.
The cached endpoints then answer from memory: no Redis round trip per request
(the round trip is the cost: BENCHMARKS.md, "bench api").

If Redis stops answering, the last copy keeps being served, marked
``"stale": true``; before any snapshot was seen the cached endpoints answer 503.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis

from ducats.keys import RedisKeys
from ducats.logs import get_logger
from reads import snapshot as snapshot_reads
from serving.errors import ApiError, Unavailable
from serving.guard import Guard
from serving.observability import SNAPSHOT_STALE, SNAPSHOT_VERSION

log = get_logger(__name__)

TOP_MAX = 100  # the largest ?limit= of /api/ducats/top-circulating


@dataclass(slots=True)
class Copy:
    """One snapshot version and the answers derived from it, serialized once."""

    version: int
    snapshot: dict[str, Any]
    top: list[dict[str, Any]]
    top_seq: int | None     # the seq the top is as of (the hot cache's)
    fresh: bytes            # /api/metrics/current, "stale": false
    stale: bytes            # the same, "stale": true
    velocity_fresh: bytes
    velocity_stale: bytes
    event: bytes            # the SSE data line
    top_bodies: dict[tuple[int, bool], bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, snapshot: dict[str, Any], top: list[dict[str, Any]], top_seq: int | None = None) -> Copy:
        version = int(snapshot["version"])
        velocity = {"version": version, "generatedAt": snapshot.get("generatedAt"),
                    "watermark": snapshot.get("watermark"), "windows": snapshot.get("velocity", {})}
        return cls(version=version, snapshot=snapshot, top=top, top_seq=top_seq,
                   fresh=orjson.dumps({**snapshot, "stale": False}), stale=orjson.dumps({**snapshot, "stale": True}),
                   velocity_fresh=orjson.dumps({**velocity, "stale": False}),
                   velocity_stale=orjson.dumps({**velocity, "stale": True}),
                   event=orjson.dumps(snapshot))

    def top_body(self, limit: int, stale: bool) -> bytes:
        """The top ``limit`` ducats, serialized at most once per (limit, staleness)."""
        key = (limit, stale)
        body = self.top_bodies.get(key)
        if body is None:
            body = orjson.dumps({"version": self.version, "stale": stale, "asOfSeq": self.top_seq,
                                 "ducats": self.top[:limit]})
            if len(self.top_bodies) < 256:
                self.top_bodies[key] = body
        return body


class SnapshotFeed:
    """Keeps :attr:`copy` current; :meth:`run` is the background task (start it in the lifespan)."""

    def __init__(self, *, client: aioredis.Redis, keys: RedisKeys, guard: Guard, refresh: float) -> None:
        self.client, self.keys, self.guard, self.refresh = client, keys, guard, refresh
        self.copy: Copy | None = None
        self.last_ok = 0.0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def stale(self) -> bool:
        """True when the last successful look at Redis is older than a few refreshes."""
        return time.monotonic() - self.last_ok > max(1.0, 5 * self.refresh)

    def current(self) -> tuple[Copy, bool]:
        """The copy to serve and whether it is stale; 503 before the first snapshot."""
        copy = self.copy
        if copy is None:
            if self.stale and self.last_ok == 0.0:
                raise Unavailable("redis", "no metric snapshot could be read yet", retry_after=1)
            raise ApiError(503, "no metric snapshot yet: the pipeline has not published one",
                           code="no_snapshot", retry_after=1)
        return copy, self.stale  # the gauge is set by run(), once per refresh

    async def poll(self) -> bool:
        """One look at the version; on a new one, read and install the copy. True if it changed."""
        async with self.guard():
            raw = await self.client.get(self.keys.snapshot_version)
        self.last_ok = time.monotonic()
        version = None if raw is None else int(raw)
        if version is None or (self.copy is not None and version == self.copy.version):
            return False
        async with self.guard():
            snapshot = await snapshot_reads.snapshot(self.client, self.keys)
            top, top_seq = await snapshot_reads.top_details(self.client, self.keys, TOP_MAX)
        if snapshot is None:
            return False
        self.copy = Copy.of(snapshot, top, top_seq)
        SNAPSHOT_VERSION.set(self.copy.version)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return True

    async def run(self) -> None:
        while True:
            try:
                await self.poll()
            except Unavailable as exc:
                log.debug("api.feed.unavailable", detail=exc.detail)
            except (ValueError, KeyError, orjson.JSONDecodeError) as exc:  # a snapshot we cannot read
                log.warning("api.feed.unreadable", error=repr(exc))
            SNAPSHOT_STALE.set(int(self.stale))
            await asyncio.sleep(self.refresh)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="snapshot-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def next_copy(self, after: int | None, *, timeout: float) -> Copy | None:
        """The first copy with a version other than ``after``; None if none comes within ``timeout``."""
        copy = self.copy
        if copy is not None and copy.version != after:
            return copy
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await changed.wait()
        copy = self.copy
        return copy if copy is not None and copy.version != after else None
