"""Versioned, idempotent schema migrations (``ducats migrate``).

Files ``migrations/NNNN_name.sql`` are applied in order, each in its own
transaction, and recorded in ``schema_migrations``. A session advisory lock
keeps two migrating processes from racing. The storage path is chosen once,
by the first migration: a TimescaleDB hypertable when the extension is
available (or ``DUCATS_TIMESCALE=on``), native monthly RANGE partitions
otherwise (``DUCATS_TIMESCALE=off``, or the extension is missing).
A server that is down is ServiceUnavailable (exit 75), a refusal ServiceRefused
(exit 1), each one line (ducats.connect).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg

from ducats.connect import pg_errors, pg_sync_connect
from sinks.errors import MigrationError

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK = 0x6475636174  # "ducat": one advisory lock id for all migrators
MONTHS_AHEAD = 3


def migration_files() -> list[tuple[int, str, Path]]:
    files = sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    return [(int(p.name[:4]), p.stem, p) for p in files]


def _use_timescale(conn: psycopg.Connection, mode: str) -> bool:
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone() is not None
    if mode == "on" and not available:
        raise MigrationError("DUCATS_TIMESCALE=on but the timescaledb extension is not installed")
    return available and mode != "off"


def _storage(conn: psycopg.Connection) -> str | None:
    if conn.execute("SELECT to_regclass('ducats_meta')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT value FROM ducats_meta WHERE key = 'storage'").fetchone()
    return None if row is None else str(row[0])


def ensure_month_partitions(conn: psycopg.Connection, months: list[dt.date]) -> None:
    """Native storage only: create the monthly partitions that ``months`` fall in."""
    history = conn.execute("SELECT to_regclass('metric_history')").fetchone() != (None,)
    for month in sorted(set(months)):
        conn.execute("SELECT ducats_ensure_month_partition(%s)", [month])
        if history:
            conn.execute("SELECT ducats_ensure_month_partition_of('metric_history', %s)", [month])


def months_around(today: dt.date, *, before: int = 1, after: int = MONTHS_AHEAD) -> list[dt.date]:
    first = today.replace(day=1)
    out = []
    for k in range(-before, after + 1):
        y, m = divmod(first.month - 1 + k, 12)
        out.append(dt.date(first.year + y, m + 1, 1))
    return out


def migrate(database_url: str, *, timescale: str = "auto", today: dt.date | None = None,
            target: int | None = None) -> list[str]:
    """Bring the schema up to date (or up to version ``target``, for tests of a
    migration over existing data); return the names of the migrations applied now."""
    applied_now: list[str] = []
    with pg_sync_connect(database_url, autocommit=True) as conn, pg_errors(database_url, session=True):
        conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK])
        conn.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                            version integer PRIMARY KEY, name text NOT NULL,
                            applied_at timestamptz NOT NULL DEFAULT now())""")
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        use_ts = _use_timescale(conn, timescale) if _storage(conn) is None else _storage(conn) == "timescale"
        for version, name, path in migration_files():
            if version in done or (target is not None and version > target):
                continue
            with conn.transaction():
                if use_ts:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                conn.execute("SELECT set_config('ducats.use_timescale', %s, true)", ["on" if use_ts else "off"])
                conn.execute(path.read_text())  # type: ignore[call-overload]
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", [version, name])
            applied_now.append(name)
        if _storage(conn) == "native":
            ensure_month_partitions(conn, months_around(today or dt.date.today()))
        conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK])
    return applied_now
