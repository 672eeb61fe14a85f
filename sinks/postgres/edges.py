"""The edges sink: holders and holder-to-holder edges in PostgreSQL, idempotent
by seq (docs/network.md).

One transaction per worker batch: lock the batch's partitions' positions, keep
the transfers above them, register their holders (a sender's first statement of
its region wins), upsert the edges aggregated per pair, move the positions on.
The worker counts new edges and fills the hot cache from what is stored: the
upsert's RETURNING when the whole batch was new, else (a replay) the stored state
of every pair the batch names, so a replay gives the same answers as the first run.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ducats.domain.network import Edge, edge_key, region_of
from sinks.postgres.ledger_sql import bool_array, int_array, text_array


@dataclass(slots=True)
class Network:
    """What a batch's write left in the edges: the seqs of the transfers that created
    an edge, and the stored state of each pair the batch names, by source partition."""

    new_seqs: frozenset[int] = frozenset()
    edges: dict[int, dict[str, Edge]] = field(default_factory=dict)


@dataclass(slots=True)
class _Pair:
    source: int
    sender: str
    receiver: str
    weight: int
    transfers: int
    first_seq: int
    last_seq: int
    first_at: str
    last_at: str


@dataclass(slots=True)
class _Batch:
    """One pass over a batch's events: the transfers above the positions, aggregated."""

    pairs: dict[tuple[str, str], _Pair] = field(default_factory=dict)
    holders: dict[str, tuple[str, bool, int, str]] = field(default_factory=dict)  # (region, as sender, seq, time)
    seqs: set[int] = field(default_factory=set)       # every transfer's seq, fresh or not
    tops: dict[int, int] = field(default_factory=dict)  # partition -> its last event's seq
    transfers: int = 0
    fresh: int = 0


def _aggregate(parts: Mapping[int, Sequence[Mapping[str, Any]]], positions: Mapping[int, int]) -> _Batch:
    """Each partition's events are in seq order (the chain's). A holder's region is what
    its first transfer as sender states (its own partition: the first one seen), else the
    lowest-seq transfer to it: no sort across partitions is needed."""
    out = _Batch()
    pairs, holders = out.pairs, out.holders
    get_pair, get_holder, add_seq = pairs.get, holders.get, out.seqs.add   # bound once: this runs per event
    transfers = fresh = 0
    for p, events in parts.items():
        if not events:
            continue
        out.tops[p] = int(events[-1]["seq"])
        floor = positions[p]
        for e in events:
            if "transactionId" not in e:
                continue
            seq = e["seq"]
            add_seq(seq)
            transfers += 1
            if seq <= floor:
                continue
            fresh += 1
            frm, to, ts = e["from"], e["to"], e["timestamp"]
            have = get_holder(frm)
            if have is None or not have[1]:
                holders[frm] = (region_of((e.get("metadata") or {}).get("fromRegion")), True, seq, ts)
            have = get_holder(to)
            if have is None or (not have[1] and seq < have[2]):
                holders[to] = (region_of((e.get("metadata") or {}).get("toRegion")), False, seq, ts)
            pair = get_pair((frm, to))
            if pair is None:
                pairs[(frm, to)] = _Pair(p, frm, to, e["ducatCount"], 1, seq, seq, ts, ts)
            else:
                pair.weight += e["ducatCount"]
                pair.transfers += 1
                pair.last_seq = seq
                pair.last_at = ts
    out.transfers, out.fresh = transfers, fresh
    return out


POSITIONS = ("INSERT INTO edge_positions (partition, seq) SELECT p, 0 FROM unnest(%s::int[]) AS p "
             "ON CONFLICT DO NOTHING")
LOCK = "SELECT partition, seq FROM edge_positions WHERE partition = ANY(%s::int[]) ORDER BY partition FOR UPDATE"
# A statement as sender beats one as receiver; between two of a kind the lower seq wins.
# A sender's own statements come from its own partition, in seq order, so its region is
# fixed by its first transfer, whatever the order in which the partitions progress: its
# edges' partition never changes.
HOLDERS = """INSERT INTO holders AS h (holder, region, as_sender, seq, at)
   SELECT * FROM unnest(%s::text::text[], %s::text::text[], %s::text::bool[], %s::text::bigint[],
                        %s::text::timestamptz[])
   ON CONFLICT (holder) DO UPDATE
     SET region = excluded.region, as_sender = excluded.as_sender, seq = excluded.seq, at = excluded.at
     WHERE (excluded.as_sender AND NOT h.as_sender)
        OR (excluded.as_sender = h.as_sender AND excluded.seq < h.seq)"""
EDGES = """INSERT INTO edges AS e (region, sender, receiver, weight, transfers, first_seq, last_seq,
                           first_at, last_at, source)
   SELECT h.region, x.s, x.r, x.w, x.n, x.f, x.l, x.fa, x.la, x.p
   FROM unnest(%s::text::text[], %s::text::text[], %s::text::bigint[], %s::text::bigint[], %s::text::bigint[],
               %s::text::bigint[], %s::text::timestamptz[], %s::text::timestamptz[], %s::text::int[])
        AS x(s, r, w, n, f, l, fa, la, p)
   JOIN holders h ON h.holder = x.s
   ON CONFLICT (region, sender, receiver) DO UPDATE
     SET weight = e.weight + excluded.weight, transfers = e.transfers + excluded.transfers,
         last_seq = excluded.last_seq, last_at = excluded.last_at
     WHERE e.last_seq < excluded.first_seq
   RETURNING e.sender, e.receiver, e.weight, e.transfers, e.first_seq, e.last_seq, e.last_at, e.source"""
MOVE = ("UPDATE edge_positions SET seq = x.s FROM unnest(%s::int[], %s::text::bigint[]) AS x(p, s) "
        "WHERE partition = x.p")


async def write(pool: AsyncConnectionPool, parts: Mapping[int, Sequence[Mapping[str, Any]]]) -> Network:
    """Write the transfers of ``parts`` (source partition -> its events, in seq order).

    Two round trips: the positions locked; then, pipelined, the holders, the edges
    (returning what they hold now) and the positions moved on. When nothing of the
    batch was in already (the steady state), what the upsert returned is the state of
    every pair the batch names; after a replay the pairs are read back (``_stored``)."""
    partitions = sorted(parts)
    if not partitions:
        return Network()
    async with pool.connection() as conn, conn.transaction():
        async with conn.pipeline():
            await conn.execute(POSITIONS, [partitions])
            cur = await conn.execute(LOCK, [partitions])
        positions = {int(p): int(s) for p, s in await cur.fetchall()}
        batch = _aggregate(parts, positions)
        pairs, holders = batch.pairs, batch.holders
        moved = {p: s for p, s in batch.tops.items() if s > positions[p]}
        returned = None
        async with conn.pipeline():
            if holders:
                hs = list(holders.values())
                await conn.execute(HOLDERS, [text_array(holders), text_array([h[0] for h in hs]),
                                             bool_array([h[1] for h in hs]), int_array([h[2] for h in hs]),
                                             text_array([h[3] for h in hs])])
            if pairs:
                ps = list(pairs.values())
                returned = await conn.execute(EDGES, [
                    text_array([p.sender for p in ps]), text_array([p.receiver for p in ps]),
                    int_array([p.weight for p in ps]), int_array([p.transfers for p in ps]),
                    int_array([p.first_seq for p in ps]), int_array([p.last_seq for p in ps]),
                    text_array([p.first_at for p in ps]), text_array([p.last_at for p in ps]),
                    int_array([p.source for p in ps])])
            if moved:
                await conn.execute(MOVE, [list(moved), int_array(list(moved.values()))])
        if batch.fresh < batch.transfers:   # a replay, in part or whole: read what is stored
            return await _stored(conn, parts)
        if returned is None:
            return Network()
        return _network(await returned.fetchall(), frozenset(batch.seqs))


def _network(rows: Sequence[tuple[Any, ...]], seqs: frozenset[int]) -> Network:
    """The Network of stored rows (sender, receiver, weight, transfers, first_seq, last_seq,
    last_at, source) of a batch whose transfers had ``seqs``."""
    out = Network(edges={})
    new: set[int] = set()
    for s, r, weight, transfers, first_seq, last_seq, last_at, source in rows:
        key = edge_key(s, r)
        out.edges.setdefault(source, {})[key] = Edge(
            weight=weight, transfers=transfers, first_seq=first_seq, last_seq=last_seq,
            last_ts=last_at.astimezone(dt.UTC).isoformat())
        if first_seq in seqs:
            new.add(first_seq)
    out.new_seqs = frozenset(new)
    return out


async def _stored(conn: Any, parts: Mapping[int, Sequence[Mapping[str, Any]]]) -> Network:
    """The stored state of every pair ``parts`` names."""
    named: dict[str, tuple[str, str]] = {}
    seqs: set[int] = set()
    for events in parts.values():
        for e in events:
            if "transactionId" in e:
                named.setdefault(edge_key(e["from"], e["to"]), (e["from"], e["to"]))
                seqs.add(int(e["seq"]))
    if not named:
        return Network()
    cur = await conn.execute(
        """SELECT x.s, x.r, e.weight, e.transfers, e.first_seq, e.last_seq, e.last_at, e.source
           FROM unnest(%s::text::text[], %s::text::text[]) AS x(s, r)
           JOIN holders h ON h.holder = x.s
           JOIN edges e ON e.region = h.region AND e.sender = x.s AND e.receiver = x.r""",
        [text_array([v[0] for v in named.values()]), text_array([v[1] for v in named.values()])])
    return _network(await cur.fetchall(), frozenset(seqs))
