"""The edges sink (sinks/postgres/edges.py) against real PostgreSQL: whatever the
cuts, the redeliveries and the replays of a log, the stored holders and edges are
what the rule (ducats.domain.network.fold_edges) gives for the log once, each
edge lives in its sender's region's partition, and the transfers it reports as
having created an edge are the same on a first run and on any replay."""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import psycopg

from ducats.connect import pg_pool
from ducats.domain.network import UNKNOWN_REGION, Edge, edge_key, fold_edges
from sinks.postgres import edges as sink
from sinks.postgres.ledger_sql import bool_array, text_array
from sinks.postgres.migrate import migrate

PARTITIONS = 4
HOLDERS = [f"h{i:02d}" for i in range(30)]
SINKS = [f"r{i}" for i in range(5)]  # holders that only ever receive
REGIONS = ["eu", "na", "latam", "apac", "africa", "Mars", None]


def ts(seq: int) -> str:
    return f"2026-11-26T12:{seq // 60 % 60:02d}:{seq % 60:02d}+00:00"


def log(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """n accepted events (a mint now and then), each transfer in its sender's partition."""
    out: list[dict[str, Any]] = []
    for seq in range(1, n + 1):
        if rng.random() < 0.05:
            out.append({"seq": seq, "mintId": f"m{seq}", "holder": "treasury", "count": 10, "timestamp": ts(seq)})
            continue
        frm, to = rng.sample(HOLDERS, 2)
        if rng.random() < 0.2:
            to = rng.choice(SINKS)
        meta = {"fromRegion": rng.choice(REGIONS), "toRegion": rng.choice(REGIONS)}
        out.append({"seq": seq, "transactionId": f"t{seq}", "timestamp": ts(seq), "from": frm, "to": to,
                    "ducatCount": rng.randint(1, 9), "metadata": meta})
    return out


def partition_of(e: dict[str, Any]) -> int:
    return sum(map(ord, e.get("from", e.get("holder", "")))) % PARTITIONS


def by_partition(events: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    parts: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        parts.setdefault(partition_of(e), []).append(e)
    return parts


def stored(url: str) -> tuple[dict[str, Edge], dict[str, str], dict[str, str]]:
    with psycopg.connect(url) as conn:
        edges = {edge_key(s, r): Edge(weight=w, transfers=n, first_seq=f, last_seq=lq, last_ts="")
                 for s, r, w, n, f, lq in conn.execute(
                     "SELECT sender, receiver, weight, transfers, first_seq, last_seq FROM edges")}
        holders: dict[str, str] = dict(conn.execute("SELECT holder, region FROM holders").fetchall())
        placed = {edge_key(s, r): str(part) for s, r, part in conn.execute(
            "SELECT sender, receiver, tableoid::regclass::text FROM edges")}
    return edges, holders, placed


def expected_regions(events: list[dict[str, Any]]) -> dict[str, str]:
    """The rule of docs/network.md: a holder's first transfer as sender states its region,
    else its first transfer as receiver."""
    def stated(v: Any) -> str:
        return v.lower() if isinstance(v, str) else UNKNOWN_REGION
    sent: dict[str, str] = {}
    received: dict[str, str] = {}
    for e in events:
        if "transactionId" in e:
            sent.setdefault(e["from"], stated(e["metadata"]["fromRegion"]))
            received.setdefault(e["to"], stated(e["metadata"]["toRegion"]))
    return received | sent


async def test_any_cut_and_any_replay_store_the_log_once(database_factory: Callable[[], str]) -> None:
    rng = random.Random(10)
    events = log(rng, 600)
    reference: dict[str, Edge] = {}
    fold_edges(reference, events)
    created = {e.first_seq for e in reference.values()}

    url = database_factory()
    migrate(url)
    pool = await pg_pool(url)
    reported: set[int] = set()
    try:
        # Each partition progresses on its own, as the worker's do: a batch takes the next
        # stretch of a few partitions, of random length; now and then a stretch goes again.
        streams = by_partition(events)
        at = dict.fromkeys(streams, 0)
        while any(at[p] < len(streams[p]) for p in streams):
            batch: dict[int, list[dict[str, Any]]] = {}
            for p in rng.sample(sorted(streams), rng.randint(1, PARTITIONS)):
                n = rng.randint(1, 25)
                start = max(0, at[p] - rng.randint(1, 30)) if rng.random() < 0.3 else at[p]
                if streams[p][start:at[p] + n]:
                    batch[p] = streams[p][start:at[p] + n]
                at[p] = min(len(streams[p]), at[p] + n)
            reported |= (await sink.write(pool, batch)).new_seqs
        first_run = set(reported)
        replay = await sink.write(pool, by_partition(events))  # the whole log again, at once
    finally:
        await pool.close()

    edges, holders, placed = stored(url)
    assert {k: (v.weight, v.transfers, v.first_seq, v.last_seq) for k, v in edges.items()} == {
        k: (v.weight, v.transfers, v.first_seq, v.last_seq) for k, v in reference.items()}
    assert first_run == created and replay.new_seqs == created
    assert holders == expected_regions(events)
    known = {"eu", "na", "latam", "apac", "africa"}
    for key, part in placed.items():
        region = holders[key.split("\u2192")[0]]
        assert part == (f"edges_{region}" if region in known else "edges_default"), (key, region, part)
    # what the replay reports of each pair is what is stored
    reported_edges = {k: v for part in replay.edges.values() for k, v in part.items()}
    assert {k: (v.weight, v.transfers) for k, v in reported_edges.items()} == {
        k: (v.weight, v.transfers) for k, v in edges.items()}
    with psycopg.connect(url) as conn:
        sources = conn.execute("SELECT sender, source FROM edges").fetchall()
    assert sources and all(partition_of({"from": sender}) == source for sender, source in sources)
    # and each pair is reported under its sender's partition
    for p, part_edges in replay.edges.items():
        assert all(partition_of({"from": k.split("\u2192")[0]}) == p for k in part_edges)


async def test_a_batch_with_no_transfer_moves_the_positions_and_writes_no_edge(
        database_factory: Callable[[], str]) -> None:
    url = database_factory()
    migrate(url)
    pool = await pg_pool(url)
    try:
        mints = [{"seq": 1, "mintId": "m1", "holder": "treasury", "count": 5, "timestamp": ts(1)}]
        assert await sink.write(pool, {0: mints}) == sink.Network()
    finally:
        await pool.close()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT partition, seq FROM edge_positions").fetchall() == [(0, 1)]
        assert conn.execute("SELECT count(*) FROM edges").fetchone() == (0,)


def test_the_array_literals_carry_any_holder_name(database_factory: Callable[[], str]) -> None:
    """text_array and bool_array (the sink's parameters) round-trip through PostgreSQL."""
    names = ['a"b', "c\\d", "{e}", "f,g", " h ", "NULL", "", "ü→ß", 'x\\"y', "tab\there", "new\nline"]
    with psycopg.connect(database_factory()) as conn:
        back = conn.execute("SELECT array_agg(x ORDER BY n) FROM unnest(%s::text::text[]) WITH ORDINALITY AS u(x, n)",
                            [text_array(names)]).fetchone()
        flags = conn.execute("SELECT %s::text::bool[]", [bool_array([True, False, True])]).fetchone()
    assert back == (names,) and flags == ([True, False, True],)
