"""``ducats bench mint``: mint N ducats through the ledger, against raw COPY and raw Kafka.

Timed: from the first publish of the mint events until the ledger has applied
all of them (ducats rows written, offsets stored, outbox published).
Baselines on the same data, in the same run: COPY of the same ducat rows and
the ledger's own ``INSERT ... generate_series`` into fresh tables like
``ducats``; raw produce and consume+decode of the same mint messages. Between
timed steps, untimed: VACUUM ANALYZE of the table just filled and a
CHECKPOINT, so no step pays for the autovacuum or dirty pages of the one before.
"""
from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from bench import kafka_base, pg_base
from bench.deadline import Deadline
from bench.env import BenchEnv, params_overrides
from bench.errors import BenchError
from bench.ledger_proc import LedgerProcess, batch_summary, connect, publish_and_apply, warm_up
from bench.report import Figure, Status, code_version, machine, utc_now
from bench.workload import ducat_rows
from ducats.settings import Settings
from ducats.upstream import mint_events


@dataclass(frozen=True, slots=True, kw_only=True)
class MintParams:
    ducats: int = 1_000_000
    size: int = 10_000
    timeout: float = 600.0
    keep: bool = False
    ledger_batch: int | None = None  # DUCATS_LEDGER_BATCH of the ledger under test; None: the setting

    def batches(self) -> int:
        if self.ducats < 1 or self.ducats % self.size:
            raise BenchError(f"--ducats ({self.ducats}) must be a positive multiple of --size ({self.size})")
        return self.ducats // self.size


async def run_mint(base: Settings, params: MintParams, status: Status) -> tuple[dict[str, Any], list[Figure]]:
    """Run the benchmark; return the JSON result (without figures) and the figures."""
    deadline = Deadline(seconds=params.timeout)
    mints = list(mint_events(batches=params.batches(), size=params.size, holder="treasury"))
    messages = [(str(m.batch).encode(), m.to_json()) for m in mints]
    started_at = utc_now()
    with status.step("creating a private database and topics"):
        env = await BenchEnv.create(base, keep=params.keep, **params_overrides(params.ledger_batch))
    try:
        seconds, ledger_log = await _pipeline(env, messages, deadline, status)
        figures = [
            Figure(key="pipeline_ducats", label="ledger: ducats minted", count=params.ducats, unit="ducats",
                   seconds=seconds),
            Figure(key="pipeline_events", label="ledger: mint events applied", count=len(mints),
                   unit="events", seconds=seconds),
        ]
        with status.step("settling the minted ducats (VACUUM ANALYZE, CHECKPOINT; not timed)"):
            await asyncio.to_thread(pg_base.settle, env.settings.database_url, "ducats")
        figures += await _kafka_baselines(env, messages, deadline, status)
        figures += await _pg_baselines(env, mints, deadline, status)
    finally:
        with status.step("cleaning up" if not params.keep else f"keeping {env.database}"):
            await env.close()
    result = {"benchmark": "mint", "params": asdict(params), "started_at": started_at,
              "machine": machine(), "code": code_version(),
              "database": env.database, "topic_prefix": env.settings.topic_prefix,
              "ledger_batch": env.settings.ledger_batch, "ledger": ledger_log}
    return result, figures


async def _pipeline(env: BenchEnv, messages: list[tuple[bytes, bytes]], deadline: Deadline,
                    status: Status) -> tuple[float, dict[str, Any]]:
    log_path = env.base.state_dir / "bench" / f"{env.database}-ledger.log"
    ledger = LedgerProcess(env, log_path=log_path)
    conn = await connect(env.settings)
    try:
        with status.step("starting the ledger (warm-up: one dead letter)"):
            ledger.start()
            await warm_up(env, ledger, conn, deadline=deadline)
            await asyncio.to_thread(pg_base.checkpoint, env.settings.database_url)
        applied = await publish_and_apply(env, ledger, conn, topic=env.settings.topic_mints,
                                          messages=messages, deadline=deadline, status=status, what="mint events")
        seconds = applied.state_s  # minted: in the ducats table and in the sink's census
        await _check(conn, messages)
    finally:
        await conn.close()
        await asyncio.to_thread(ledger.stop, 30.0)
    return seconds, {**batch_summary(ledger.batches(where="mints"), applied.log_s), "log_s": round(applied.log_s, 3),
                     "state_s": round(applied.state_s, 3), "log": str(log_path)}


async def _check(conn: Any, messages: list[tuple[bytes, bytes]]) -> None:
    """The run counts only if the ledger minted every ducat of every event."""
    from schemas.codec import decode_mint

    want = sum(decode_mint(v).count for _, v in messages)
    cur = await conn.execute("SELECT (SELECT count(*) FROM ducats), (SELECT count(*) FROM mints)")
    got = await cur.fetchone()
    if got != (want, len(messages)):
        raise BenchError(f"the ledger wrote {got[0]} ducats and {got[1]} mints; expected {want} and {len(messages)}")


async def _kafka_baselines(env: BenchEnv, messages: list[tuple[bytes, bytes]], deadline: Deadline,
                           status: Status) -> list[Figure]:
    topic = await kafka_base.baseline_topic(env, env.settings.topic_mints, "mints")
    with status.step(f"baseline: raw produce of {len(messages):,} mint messages"):
        produced = await kafka_base.produce(env, topic, messages)
    with status.step("baseline: raw consume + decode", total=len(messages)) as update:
        consumed = await kafka_base.consume_decode(env, topic, len(messages), deadline=deadline, on_read=update)
    n = len(messages)
    return [
        Figure(key="kafka_produce", label="raw aiokafka produce (acks=all, idempotent)", count=n,
               unit="messages", seconds=produced, versus="pipeline_events"),
        Figure(key="kafka_consume", label="raw aiokafka consume + orjson decode", count=n,
               unit="messages", seconds=consumed, versus="pipeline_events"),
    ]


async def _pg_baselines(env: BenchEnv, mints: list[Any], deadline: Deadline, status: Status) -> list[Figure]:
    url, n = env.settings.database_url, sum(m.count for m in mints)
    with status.step(f"baseline: COPY {n:,} ducat rows", total=n) as update:
        copied = await asyncio.to_thread(pg_base.copy_ducats, url, ducat_rows(mints), deadline=deadline,
                                         progress=update)
    await asyncio.to_thread(pg_base.settle, url, "bench_copy_ducats")  # its autovacuum must not overlap the next
    with status.step(f"baseline: INSERT ... generate_series of {n:,} ducat rows"):
        inserted = await asyncio.to_thread(pg_base.insert_series, url, mints, deadline=deadline)
    return [
        Figure(key="pg_copy", label="COPY ducat rows (same PK, indexes)", count=n, unit="rows",
               seconds=copied, versus="pipeline_ducats"),
        Figure(key="pg_insert_series", label="INSERT ... SELECT generate_series (same rows)", count=n,
               unit="rows", seconds=inserted, versus="pipeline_ducats"),
    ]
