"""PostgreSQL baselines: the ledger's writes, done raw, on the same rows.

Each one creates a fresh table ``LIKE`` the ledger's (``INCLUDING ALL``: the same
columns, defaults, primary key and indexes, but a plain table, never a
hypertable or partitioned) in the benchmark's private database, and times only
the writes and their commits. Synchronous psycopg: nothing else runs
meanwhile, and ``statement_timeout`` bounds every statement by the run's
remaining budget.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql

from bench.deadline import Deadline
from bench.workload import ChangeRow, DucatRow
from schemas.models import MintBatch

Progress = Callable[[int], None]
TICK = 1 << 16  # rows between progress updates

INSERT_SERIES = sql.SQL("""
    INSERT INTO {table} (id, batch, holder, mint_id, minted_at)
    SELECT m.batch::bigint * 1000000 + s, m.batch, m.holder, m.mint_id, m.ts
    FROM unnest(%s::text[], %s::int[], %s::int[], %s::int[], %s::text[], %s::timestamptz[])
         AS m(mint_id, batch, first_seq, count, holder, ts)
    CROSS JOIN LATERAL generate_series(m.first_seq, m.first_seq + m.count - 1) AS s""")

UPDATE_FROM = sql.SQL("""
    UPDATE {table} AS d SET holder = c.holder, transfer_count = d.transfer_count + c.moves,
           last_tx_seq = c.last_seq, last_transfer_at = c.last_at
    FROM ducat_changes AS c WHERE d.id = c.id""")


def _connect(url: str, deadline: Deadline) -> psycopg.Connection[Any]:
    budget_ms = max(1000, int(deadline.remaining() * 1000))
    return psycopg.connect(url, connect_timeout=15, options=f"-c statement_timeout={budget_ms} -c timezone=UTC")


def _fresh(conn: psycopg.Connection[Any], table: str, like: str) -> None:
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(sql.Identifier(table), sql.Identifier(like)))
    conn.commit()


def _ticking(rows: Iterable[Sequence[Any]], progress: Progress | None) -> Iterator[Sequence[Any]]:
    for n, row in enumerate(rows, start=1):
        if progress is not None and n % TICK == 0:
            progress(n)
        yield row


def copy_ducats(url: str, rows: Iterable[DucatRow], *, deadline: Deadline, progress: Progress | None = None) -> float:
    """Seconds to COPY ``rows`` (id, batch, holder, mint_id, minted_at) into a fresh
    table like ``ducats`` and commit."""
    with _connect(url, deadline) as conn:
        _fresh(conn, "bench_copy_ducats", "ducats")
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                "COPY bench_copy_ducats (id, batch, holder, mint_id, minted_at) FROM STDIN") as copy:
            for row in _ticking(rows, progress):
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - started


def insert_series(url: str, mints: Sequence[MintBatch], *, deadline: Deadline) -> float:
    """Seconds to expand ``mints`` server-side into a fresh table like ``ducats`` with the
    ledger's own ``INSERT ... SELECT ... generate_series`` (one statement) and commit."""
    with _connect(url, deadline) as conn:
        _fresh(conn, "bench_series_ducats", "ducats")
        params = [[m.mint_id for m in mints], [m.batch for m in mints], [m.first_seq for m in mints],
                  [m.count for m in mints], [m.holder for m in mints], [m.timestamp for m in mints]]
        started = time.perf_counter()
        conn.execute(INSERT_SERIES.format(table=sql.Identifier("bench_series_ducats")), params)
        conn.commit()
        return time.perf_counter() - started


def copy_transactions(url: str, rows: Iterable[Sequence[Any]], *, deadline: Deadline,
                      progress: Progress | None = None) -> float:
    """Seconds to COPY transaction rows into a fresh plain table like ``transactions``
    (same columns and indexes) and commit."""
    with _connect(url, deadline) as conn:
        _fresh(conn, "bench_transactions", "transactions")
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                """COPY bench_transactions (seq, transaction_id, ts, sender, receiver, ducat_ids,
                   ducat_count, consciousness_impact, metadata, applied_at) FROM STDIN""") as copy:
            for row in _ticking(rows, progress):
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - started


def update_holders(url: str, chunks: Sequence[Sequence[ChangeRow]], *, deadline: Deadline,
                   progress: Progress | None = None) -> float:
    """Seconds to apply holder changes to a fresh copy of ``ducats`` the way the ledger
    moves holders, one transaction per chunk: COPY into a temporary staging table,
    then one ``UPDATE ... FROM`` of the holder and its move counters (the raw cost of
    moving holders; the ledger's own statement also writes the consciousness columns).
    The copy of the table (its data, indexes, VACUUM ANALYZE) is not timed."""
    with _connect(url, deadline) as conn:
        _fresh(conn, "bench_ducats", "ducats")
        conn.execute("INSERT INTO bench_ducats SELECT * FROM ducats")
        conn.commit()
        settle(url, "bench_ducats")
        started, done = time.perf_counter(), 0
        for rows in chunks:
            deadline.check("updating holders")
            conn.execute("""CREATE TEMP TABLE IF NOT EXISTS ducat_changes (
                                id bigint, holder text, moves int, last_seq bigint, last_at timestamptz)
                            ON COMMIT DELETE ROWS""")
            with conn.cursor() as cur, cur.copy(
                    "COPY ducat_changes (id, holder, moves, last_seq, last_at) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.execute(UPDATE_FROM.format(table=sql.Identifier("bench_ducats")))
            conn.commit()
            done += len(rows)
            if progress is not None:
                progress(done)
        return time.perf_counter() - started


def checkpoint(url: str) -> bool:
    """CHECKPOINT, so that each timed write starts with no dirty pages of the one
    before it to flush (needs superuser or pg_checkpoint; False when refused)."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=15) as conn:
            conn.execute("CHECKPOINT")
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False


def settle(url: str, table: str) -> bool:
    """VACUUM (ANALYZE) a freshly filled table, then CHECKPOINT: what autovacuum would
    do to it anyway, done before the clock starts rather than during the timed run."""
    with psycopg.connect(url, autocommit=True, connect_timeout=15) as conn:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
    return checkpoint(url)
