"""The ducat census: exact counts per temperature, stage and level decile,
kept by the ledger in PostgreSQL (README, "Consciousness model")."""
from __future__ import annotations

from psycopg_pool import AsyncConnectionPool


async def census(pool: AsyncConnectionPool) -> dict[str, dict[str, int]]:
    """{dimension: {bucket: ducats}} from ducat_census; empty before that table exists."""
    async with pool.connection() as conn:
        if (await (await conn.execute("SELECT to_regclass('ducat_census')")).fetchone()) == (None,):
            return {}
        rows = await (await conn.execute("SELECT dimension, bucket, ducats FROM ducat_census")).fetchall()
    out: dict[str, dict[str, int]] = {}
    for dimension, bucket, n in rows:
        out.setdefault(dimension, {})[bucket] = int(n)
    return out
