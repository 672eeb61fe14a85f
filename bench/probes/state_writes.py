"""Probe for issue 9's ledger step: what PostgreSQL's side of a batch costs per
moved ducat at 3.9M ducats, for the candidate places of ducat state.

In a scratch schema ``probe`` of the configured database (dropped at the end):

- ``wide``: a copy of ``ducats`` (its columns, its four indexes, a consciousness
  document per row), updated as the ledger does today: COPY the changes to a
  staging table, then one ``UPDATE ... FROM`` by primary key. Holder and
  ``last_transfer_at`` are indexed, so no update is HOT.
- ``narrow``: ``(id bigint primary key, holder int)`` with fillfactor 80, the
  ownership alone, updated the same way: no indexed column changes, so the
  updates can be HOT.
- ``moves``: the append-only log a ledger would still write synchronously, shaped
  as ``ducat_moves`` (16 hash partitions, primary key ``(ducat_id, seq)``), by COPY.
- baseline, same run: a raw COPY of the same rows into an unindexed table.

Each batch is ``--batch`` moves of random ducats, in its own transaction,
committed (synchronous_commit as configured). Prints rows/s per candidate and
the ratio to the raw COPY.

    .venv/bin/python bench/probes/state_writes.py --ducats 3900000 --batch 5000 --batches 20
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

DOC = ('{"awareness": {"self": 0, "purpose": 0, "network": 0}, "evolutionStage": 0,'
       ' "resonanceFrequency": 0.5, "lastEvolution": null}')


def setup(conn: psycopg.Connection[Any], ducats: int) -> None:
    batches = ducats // 1000
    conn.execute("DROP SCHEMA IF EXISTS probe CASCADE")
    conn.execute("CREATE SCHEMA probe")
    conn.execute("CREATE TABLE probe.wide (LIKE public.ducats INCLUDING ALL)")
    conn.execute(f"""INSERT INTO probe.wide (id, batch, holder, mint_id, minted_at, consciousness)
                     SELECT b::bigint * 1000000 + s, b, 'h' || (b % 3900), 'm' || b, now(), '{DOC}'::jsonb
                     FROM generate_series(1, {batches}) AS b, generate_series(1, 1000) AS s""")
    conn.execute("CREATE TABLE probe.narrow (id bigint PRIMARY KEY, holder int NOT NULL) WITH (fillfactor = 80)")
    conn.execute("INSERT INTO probe.narrow SELECT id, batch % 3900 FROM probe.wide")
    conn.execute("""CREATE TABLE probe.moves (ducat_id bigint NOT NULL, seq bigint NOT NULL, ts timestamptz NOT NULL,
                        sender text NOT NULL, receiver text NOT NULL, transaction_id text NOT NULL,
                        PRIMARY KEY (ducat_id, seq)) PARTITION BY HASH (ducat_id)""")
    for i in range(16):
        conn.execute(f"CREATE TABLE probe.moves_p{i:02d} PARTITION OF probe.moves "
                     f"FOR VALUES WITH (MODULUS 16, REMAINDER {i})")
    conn.execute("""CREATE TABLE probe.raw (ducat_id bigint, seq bigint, ts timestamptz, sender text, receiver text,
                        transaction_id text)""")
    conn.execute("VACUUM ANALYZE probe.wide")
    conn.execute("VACUUM ANALYZE probe.narrow")


def timed(conn: psycopg.Connection[Any], batches: Iterable[list[int]], step: Callable[[Any, list[int], int], None]
          ) -> tuple[int, float]:
    rows, took = 0, 0.0
    for k, ids in enumerate(batches):
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            step(cur, ids, k)
        took += time.perf_counter() - started
        rows += len(ids)
    return rows, took


def moves_rows(ids: list[int], k: int) -> Iterable[tuple[Any, ...]]:
    at = dt.datetime.now(dt.UTC)
    for j, d in enumerate(ids):
        yield d, k * 1_000_000 + j, at, f"h{d % 3900}", f"h{(d + 1) % 3900}", f"t{k}-{j // 5}"


def copy_log(table: str) -> Callable[[Any, list[int], int], None]:
    def step(cur: Any, ids: list[int], k: int) -> None:
        with cur.copy(f"COPY {table} (ducat_id, seq, ts, sender, receiver, transaction_id) FROM STDIN") as cp:
            for row in moves_rows(ids, k):
                cp.write_row(row)
    return step


def update_wide(cur: Any, ids: list[int], k: int) -> None:
    cur.execute("""CREATE TEMP TABLE IF NOT EXISTS wide_changes (id bigint, holder text, transfer_count int,
                       last_seq bigint, last_at timestamptz, level double precision, stage smallint,
                       temperature text, aware_self double precision, resonance double precision)
                   ON COMMIT DELETE ROWS""")
    at = dt.datetime.now(dt.UTC)
    with cur.copy("COPY wide_changes FROM STDIN") as cp:
        for j, d in enumerate(ids):
            cp.write_row((d, f"h{(d + k) % 3900}", k + 1, k * 1_000_000 + j, at, 0.1, 1, "warm", 0.2, 0.5))
    cur.execute("SET LOCAL enable_hashjoin = off")
    cur.execute("SET LOCAL enable_mergejoin = off")
    cur.execute("""UPDATE probe.wide AS d SET holder = c.holder, previous_holder = d.holder,
                       transfer_count = c.transfer_count, last_tx_seq = c.last_seq, last_transfer_at = c.last_at,
                       consciousness_level = c.level, stage = c.stage, temperature = c.temperature::temperature,
                       consciousness = jsonb_build_object(
                           'awareness', jsonb_build_object('self', c.aware_self, 'purpose', 0, 'network', 0),
                           'evolutionStage', c.stage, 'resonanceFrequency', c.resonance,
                           'lastEvolution', d.consciousness -> 'lastEvolution')
                   FROM wide_changes AS c WHERE d.id = c.id""")


def update_narrow(cur: Any, ids: list[int], k: int) -> None:
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS narrow_changes (id bigint, holder int) ON COMMIT DELETE ROWS")
    with cur.copy("COPY narrow_changes FROM STDIN") as cp:
        for d in ids:
            cp.write_row((d, (d + k) % 3900))
    cur.execute("SET LOCAL enable_hashjoin = off")
    cur.execute("SET LOCAL enable_mergejoin = off")
    cur.execute("UPDATE probe.narrow AS d SET holder = c.holder FROM narrow_changes AS c WHERE d.id = c.id")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ducats", type=int, default=3_900_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    url = os.environ.get("DATABASE_URL", "postgresql://ducats@127.0.0.1:5432/ducats")
    rng = random.Random(a.seed)
    n_batches = a.ducats // 1000
    plan = [[b * 1_000_000 + s for b, s in ((rng.randint(1, n_batches), rng.randint(1, 1000))
                                              for _ in range(a.batch))] for _ in range(a.batches)]
    plan = [sorted(set(ids)) for ids in plan]
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        setup(conn, a.ducats)
        print(f"set up {a.ducats:,} ducats in {time.perf_counter() - started:.1f} s; "
              f"{a.batches} batches of {a.batch:,} moves")
        try:
            results = {}
            for name, step in [("raw COPY, unindexed (baseline)", copy_log("probe.raw")),
                               ("moves log: COPY into ducat_moves' shape", copy_log("probe.moves")),
                               ("wide: COPY + UPDATE ducats' shape (today)", update_wide),
                               ("narrow: COPY + UPDATE (id, holder), fillfactor 80", update_narrow)]:
                rows, took = timed(conn, plan, step)
                results[name] = rows / took
            base = results["raw COPY, unindexed (baseline)"]
            for name, per_s in results.items():
                print(f"{name:52s} {per_s:10,.0f} rows/s   x {per_s / base:5.2f} raw COPY")
            hot = conn.execute("""SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
                                  WHERE schemaname = 'probe' AND relname IN ('wide', 'narrow')
                                  ORDER BY relname""").fetchall()
            for rel, upd, hot_upd in hot:
                print(f"{rel}: {upd:,} updates, {hot_upd:,} HOT")
        finally:
            conn.execute("DROP SCHEMA probe CASCADE")


if __name__ == "__main__":
    main()
