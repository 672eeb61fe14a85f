"""The metric snapshot in Redis, and the per-partition partials it is built from.

Keys (``<p>`` is DUCATS_TOPIC_PREFIX, ``ducats`` by default):

- ``<p>:metrics:partials``  HASH  partition number -> PartitionMetrics JSON
- ``<p>:metrics:partials:seq`` HASH partition number -> the seq of that JSON
- ``<p>:metrics:owners``    HASH  partition number -> the worker (host:pid) that wrote it last
- ``<p>:metrics:snapshot``  STRING  the snapshot JSON (README, "Metric formats")
- ``<p>:metrics:snapshot:version`` STRING  the snapshot's version number

A partial is only ever replaced by one with a higher or equal seq (a Lua
compare-and-set), so a worker that recovers a partition from its changelog
never moves the snapshot backwards while it catches up. Redis keeps nothing on
disk: after a restart the workers write their partials again, and the version
continues from the highest one this process wrote (``floor``).
"""
from __future__ import annotations

import os
import socket
from typing import Any

import orjson
import redis.asyncio as aioredis

from ducats.domain.metrics import PartitionMetrics
from ducats.keys import RedisKeys
from ducats.settings import Settings

_CAS = """
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur and tonumber(cur) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
return 1
"""
# The next version, never at or below ``floor`` (a Redis that restarted empty starts again at 1).
_NEXT_VERSION = """
local v = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if v <= floor then
  v = floor + 1
  redis.call('SET', KEYS[1], v)
end
return v
"""
WORKER = f"{socket.gethostname()}:{os.getpid()}"


class MetricStore:
    def __init__(self, *, settings: Settings, client: aioredis.Redis) -> None:
        self.client = client
        keys = RedisKeys.of(settings)
        self.partials_key, self.seqs_key, self.owners_key = keys.partials, keys.partial_seqs, keys.owners
        self.snapshot_key, self.version_key = keys.snapshot, keys.snapshot_version
        self._cas = client.register_script(_CAS)
        self._next_version = client.register_script(_NEXT_VERSION)
        self.version = 0  # the highest version this process wrote

    async def write_partial(self, partition: int, pm: PartitionMetrics, *, pipe: Any = None) -> bool:
        """Store ``pm`` unless Redis already holds a later one for ``partition``.
        With ``pipe`` (a Redis pipeline) the write is only queued on it."""
        done = await self._cas(keys=[self.partials_key, self.seqs_key, self.owners_key],
                               args=[str(partition), pm.seq, pm.to_json(), WORKER], client=pipe)
        return bool(done)

    async def stored_seqs(self, partitions: list[int]) -> dict[int, int]:
        """The seq Redis holds for each of ``partitions`` (-1: none, e.g. after a restart)."""
        if not partitions:
            return {}
        raw = await self.client.hmget(self.seqs_key, [str(p) for p in partitions])
        return {p: -1 if v is None else int(v) for p, v in zip(partitions, raw, strict=True)}

    async def read_partials(self) -> dict[int, PartitionMetrics]:
        raw = await self.client.hgetall(self.partials_key)
        return {int(k): PartitionMetrics.from_json(v if isinstance(v, bytes) else v.encode())
                for k, v in raw.items()}

    async def replace_snapshot(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """Give ``snapshot`` the next version and replace the stored one atomically."""
        version = int(await self._next_version(keys=[self.version_key], args=[self.version]))
        snapshot = {"version": version, **snapshot}
        await self.client.set(self.snapshot_key, orjson.dumps(snapshot))
        self.version = version
        return snapshot

