"""The hot cache in Redis: the most active ducats, the last hour of
transactions, and the active network connections. Every write is idempotent
(absolute values, members keyed by id), so a replayed batch changes nothing.
Each method takes an optional ``pipe`` (a Redis pipeline) to queue its script
call there instead of sending it at once.

Keys (``<p>`` = DUCATS_TOPIC_PREFIX) and their bounds:

| key | type | content | bound |
|---|---|---|---|
| ``<p>:hot:ducats`` | ZSET | ducat id -> transfer count | DUCATS_HOT_DUCATS (10,000) most active |
| ``<p>:hot:ducat`` | HASH | ducat id -> JSON details | same members as the ZSET |
| ``<p>:hot:ducats:seq`` | STRING | the seq the two keys above are as of (the ducat-state sink's position when it wrote them) | one |
| ``<p>:hot:tx`` | ZSET | chunk -> its newest event time (epoch s) | last hour before the watermark, at most DUCATS_HOT_TRANSACTIONS transactions |
| ``<p>:hot:tx:data`` | HASH | chunk -> JSON array of its transactions' summaries, in seq order | same members |
| ``<p>:hot:edges`` | ZSET | "from→to" -> last event time | last hour, at most DUCATS_HOT_EDGES |
| ``<p>:hot:edges:data`` | HASH | "from→to" -> JSON {weight, transfers} | same members |

Recent transactions are kept in **chunks**, one per batch record of the accepted log
(the transfers one ledger batch accepted in one partition), named
``<partition>:<first seq>:<count>``. A record's content never changes, so a replayed
record writes the same chunk again. One chunk per record instead of one member per
transaction: at 16,000 transactions a worker batch, the per-transaction ZADD, HSET, ZREM
and HDEL were Redis's whole CPU (40 % of a core) and half the worker's batch time
(bench metrics). A reader takes the newest chunks and reads their arrays.

At the defaults that is about 10k x 150 B + 100k x 200 B + 10k x 120 B, under
25 MB, well inside Redis's maxmemory (REDIS_MAXMEMORY, 1 GB).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis

from ducats.domain.network import Edge
from ducats.keys import RedisKeys
from ducats.settings import Settings
from schemas.ducat_id import ducat_str

HOUR = 3600

# Each script takes its members as one JSON argument, an array of [score, member,
# details] (details: a JSON text): one argument to pack per call instead of three per
# member (redis-py's pack_command was 8 % of the worker's CPU; bench metrics).

# The scripts' shared parts: add the members of ARGV[1] (ZADD score, HSET details), and
# remove the members in ``old`` from both keys (in slices: unpack has a limit).
_ADD = """
for _, m in ipairs(cjson.decode(ARGV[1])) do
  redis.call('ZADD', KEYS[1], m[1], m[2])
  redis.call('HSET', KEYS[2], m[2], m[3])
end
"""
_DROP_OLD = """
for j = 1, #old, 5000 do
  local last = math.min(j + 4999, #old)
  redis.call('ZREM', KEYS[1], unpack(old, j, last))
  redis.call('HDEL', KEYS[2], unpack(old, j, last))
end
return #old
"""

# Only if the set's seq (KEYS[3]) is still ARGV[4], the one this writer last set (else -1:
# Redis restarted empty, a write was lost, or another writer came between; the writer then
# rebuilds): add members with absolute scores, keep the top N, drop the details of the
# evicted, and set the seq to ARGV[3].
_KEEP_TOP = """
if redis.call('GET', KEYS[3]) ~= ARGV[4] then return -1 end
redis.call('SET', KEYS[3], ARGV[3])
""" + _ADD + """
local n = tonumber(ARGV[2])
local extra = redis.call('ZCARD', KEYS[1]) - n
if extra > 0 then
  local gone = redis.call('ZRANGE', KEYS[1], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
  for i = 1, #gone, 5000 do
    redis.call('HDEL', KEYS[2], unpack(gone, i, math.min(i + 4999, #gone)))
  end
  return extra
end
return 0  -- not full: nothing trimmed (-1 means only that the seq did not follow)
"""

# Replace the whole set (a rebuild from PostgreSQL) and set its seq.
_REPLACE_TOP = """
redis.call('DEL', KEYS[1], KEYS[2])
""" + _ADD + """
redis.call('SET', KEYS[3], ARGV[2])
return 0
"""

# Add chunks ([score, member, data], member "<partition>:<first seq>:<count>"), drop those older
# than the horizon, then the oldest until at most ``cap`` transactions remain, or only the newest
# chunk (the counts are in the members' names).
_KEEP_RECENT_CHUNKS = _ADD + """
local horizon, cap = ARGV[2], tonumber(ARGV[3])
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. horizon)
local all = redis.call('ZRANGE', KEYS[1], #old, -1)
local total = 0
for _, m in ipairs(all) do total = total + tonumber(string.match(m, ':(%d+)$')) end
local i = 1
while total > cap and i < #all do  -- the newest chunk stays, whatever its size
  total = total - tonumber(string.match(all[i], ':(%d+)$'))
  table.insert(old, all[i])
  i = i + 1
end
""" + _DROP_OLD

# Add members scored by time, then drop those older than the horizon or beyond the cap.
_KEEP_RECENT = _ADD + """
local horizon, cap = ARGV[2], tonumber(ARGV[3])
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. horizon)
local extra = redis.call('ZCARD', KEYS[1]) - #old - cap
if extra > 0 then
  local more = redis.call('ZRANGE', KEYS[1], #old, #old + extra - 1)
  for _, m in ipairs(more) do table.insert(old, m) end
end
""" + _DROP_OLD


class HotCache:
    def __init__(self, *, settings: Settings, client: aioredis.Redis) -> None:
        self.settings = settings
        self.keys = RedisKeys.of(settings)
        self.client = client
        self._top = client.register_script(_KEEP_TOP)
        self._replace_top = client.register_script(_REPLACE_TOP)
        self._recent = client.register_script(_KEEP_RECENT)
        self._recent_chunks = client.register_script(_KEEP_RECENT_CHUNKS)
        # The lowest member of a full top set, as Redis orders it: (transfer count, then the
        # ducat id's text, bytewise). Only a candidate above it can stay, so the rest are not
        # sent (nor read: sinks/postgres/metrics.py filters on it). Counts only grow, so the
        # lowest member only rises, and a stale (lower) value only lets through candidates that
        # the script then trims. It matters for ties: with 10,000 members all at one transfer,
        # a count threshold alone let every moved ducat in and out again, every batch (bench e2e).
        self.threshold = 0
        self.lowest = ""

    async def refresh_threshold(self) -> int:
        key = self.keys.hot_ducats
        if await self.client.zcard(key) >= self.settings.hot_ducats:
            lowest: list[tuple[bytes | str, float]] = await self.client.zrange(  # type: ignore[assignment]
                key, 0, 0, withscores=True)
            if lowest:
                member, score = lowest[0]
                self.threshold = int(score)
                self.lowest = member.decode() if isinstance(member, bytes) else str(member)
        return self.threshold

    def can_enter(self, transfers: int, ducat: int) -> bool:
        """Whether a ducat with this count would rank above the lowest member (as of the last
        refresh_threshold); the id's text is built only for a tie on the count."""
        return transfers > self.threshold or transfers == self.threshold and ducat_str(ducat) > self.lowest

    async def record_ducats(self, rows: Iterable[Mapping[str, Any]], *, seq: int, after: int) -> bool:
        """rows: the state of moved ducats (ducatId, transfers, holder, ...) as of ``seq``, those
        that can enter (can_enter: the writer filters, so it builds rows only for them); the
        set's seq becomes ``seq`` if it is still ``after`` (the seq this writer last set);
        False, and nothing written, if it is not. A row that ranks too low is trimmed here."""
        members = [(r["transfers"], r["ducatId"], orjson.dumps(r).decode()) for r in rows]
        extra = await self._top(keys=[self.keys.hot_ducats, self.keys.hot_ducat, self.keys.hot_ducats_seq],
                                args=[orjson.dumps(members), self.settings.hot_ducats, seq, after])
        return int(extra) >= 0

    async def replace_ducats(self, rows: Iterable[Mapping[str, Any]], *, seq: int) -> None:
        """The whole set, as of ``seq``: the top ducats as PostgreSQL holds them (a rebuild)."""
        members = [(r["transfers"], r["ducatId"], orjson.dumps(r).decode()) for r in rows]
        await self._replace_top(keys=[self.keys.hot_ducats, self.keys.hot_ducat, self.keys.hot_ducats_seq],
                                args=[orjson.dumps(members), seq])
        self.threshold, self.lowest = 0, ""

    async def ducats_seq(self) -> int | None:
        """The seq the set is as of; None when Redis holds none (it restarted empty)."""
        raw = await self.client.get(self.keys.hot_ducats_seq)
        return None if raw is None else int(raw)

    async def record_transactions(self, records: Iterable[tuple[int, Sequence[Mapping[str, Any]]]], *,
                                  when: Mapping[int, int], watermark: int, pipe: Any = None) -> None:
        """records: (partition, the accepted events of one batch record); each record's
        transfers become one chunk."""
        chunks = []
        for partition, events in records:
            summaries = [{"seq": e["seq"], "transactionId": e["transactionId"], "timestamp": e["timestamp"],
                          "from": e["from"], "to": e["to"], "ducatCount": e["ducatCount"],
                          "consciousnessImpact": e["consciousnessImpact"]} for e in events if "transactionId" in e]
            if summaries:
                newest = max(when[t["seq"]] for t in summaries)
                name = f"{partition}:{summaries[0]['seq']}:{len(summaries)}"
                chunks.append((newest, name, orjson.dumps(summaries).decode()))
        if chunks:
            await self._recent_chunks(keys=[self.keys.hot_tx, self.keys.hot_tx_data],
                                      args=[orjson.dumps(chunks), watermark - HOUR, self.settings.hot_transactions],
                                      client=pipe)

    async def record_edges(self, edges: Mapping[str, Edge], *, when: Mapping[str, int], watermark: int,
                           pipe: Any = None) -> None:
        members = [(when[key], key, orjson.dumps({"weight": edge.weight, "transfers": edge.transfers,
                                                  "lastTimestamp": edge.last_ts}).decode())
                   for key, edge in edges.items()]
        if members:
            await self._recent(keys=[self.keys.hot_edges, self.keys.hot_edges_data],
                               args=[orjson.dumps(members), watermark - HOUR, self.settings.hot_edges], client=pipe)
