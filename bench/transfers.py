"""``ducats bench transfers``: N valid transfers through the ledger, against raw
COPY, a raw bulk UPDATE and raw Kafka.

Set-up, not timed: HOLDERS holders each get PER_HOLDER ducats minted through
the ledger, then ``VACUUM (ANALYZE) ducats`` and a CHECKPOINT, so that the
autovacuum a big mint triggers does not run inside the timed phase. Timed: from the first publish of the transfers until the ledger has
applied all of them. Every transfer is valid (``bench.workload.TransferChain``),
and afterwards every holder's balance must equal the generator's model.
Baselines, same run, same data: raw produce and consume+decode of the same
messages; COPY of the same transaction rows into a plain table like
``transactions``; the same holder changes applied to a copy of ``ducats`` the
way the ledger moves holders (COPY to staging, ``UPDATE ... FROM``, one
transaction per ledger batch).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import kafka_base, pg_base
from bench.deadline import Deadline
from bench.env import BenchEnv, params_overrides
from bench.errors import BenchError
from bench.ledger_proc import Applied, LedgerProcess, batch_summary, connect, publish_and_apply, state_summary
from bench.profile import load_profile
from bench.report import Figure, Status, code_version, machine, utc_now
from bench.workload import (
    Move,
    TransferChain,
    holder_changes,
    holder_names,
    holdings_of,
    mint_plan,
    timestamps,
    transaction_rows,
    transfer_moves,
)
from ducats.settings import Settings
from schemas.models import MintBatch

Message = tuple[bytes, bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferParams:
    transfers: int = 100_000
    ducats_per_transfer: int = 5
    holders: int = 1_000
    per_holder: int = 1_000
    seed: int = 20261126
    timeout: float = 600.0
    keep: bool = False
    ledger_batch: int | None = None  # DUCATS_LEDGER_BATCH of the ledger under test; None: the setting
    profile_dir: str | None = None
    cprofile: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    mints: list[MintBatch]
    moves: list[Move]
    final: dict[str, int]  # each holder's balance once every transfer is applied


def make_workload(p: TransferParams) -> Workload:
    if p.transfers < 1:
        raise BenchError("--transfers must be at least 1")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        mints = mint_plan(holders=holder_names(p.holders), per_holder=p.per_holder, timestamp=now.isoformat())
        chain = TransferChain(holdings=holdings_of(mints), ducats_per_transfer=p.ducats_per_transfer, seed=p.seed)
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    moves = transfer_moves(chain, timestamps(now, p.transfers), prefix=f"tx-{p.seed}")
    return Workload(mints=mints, moves=moves, final={h: len(v) for h, v in chain.held.items()})


async def run_transfers(base: Settings, params: TransferParams,
                        status: Status) -> tuple[dict[str, Any], list[Figure]]:
    """Run the benchmark; return the JSON result (without figures) and the figures."""
    deadline = Deadline(seconds=params.timeout)
    with status.step(f"generating {params.transfers:,} valid transfers (seed {params.seed})"):
        work = make_workload(params)
        messages = [(m.sender.encode(), m.to_transfer().to_json()) for m in work.moves]
    started_at = utc_now()
    with status.step("creating a private database and topics"):
        env = await BenchEnv.create(base, keep=params.keep, **params_overrides(params.ledger_batch))
    try:
        applied, ledger_log, profile = await _pipeline(env, params, work, messages, deadline, status)
        n, moves = len(work.moves), sum(len(m.ducats) for m in work.moves)
        figures = [
            Figure(key="pipeline_transfers", label="ledger + ducat-state sink: transfers applied", count=n,
                   unit="transfers", seconds=applied.state_s),
            Figure(key="pipeline_moves", label="ledger + ducat-state sink: ducat moves applied", count=moves,
                   unit="moves", seconds=applied.state_s),
            Figure(key="ledger_log_transfers", label="ledger alone: transfers decided, logged, published",
                   count=n, unit="transfers", seconds=applied.log_s, versus="pipeline_transfers"),
        ]
        with status.step("settling the ducats table (VACUUM ANALYZE, CHECKPOINT; not timed)"):
            await asyncio.to_thread(pg_base.settle, env.settings.database_url, "ducats")
        figures += await _kafka_baselines(env, messages, deadline, status)
        figures += await _pg_baselines(env, work, deadline, status)
    finally:
        with status.step("cleaning up" if not params.keep else f"keeping {env.database}"):
            await env.close()
    result = {"benchmark": "transfers", "params": asdict(params), "started_at": started_at,
              "machine": machine(), "code": code_version(),
              "database": env.database, "topic_prefix": env.settings.topic_prefix,
              "ledger_batch": env.settings.ledger_batch,
              "minted": sum(m.count for m in work.mints), "ledger": ledger_log}
    if profile is not None:
        result["profile"] = profile
    return result, figures


async def _pipeline(env: BenchEnv, p: TransferParams, work: Workload, messages: list[Message], deadline: Deadline,
                    status: Status) -> tuple[Applied, dict[str, Any], dict[str, Any] | None]:
    probe_dir = Path(p.profile_dir).resolve() if p.profile_dir else None
    folder = probe_dir or env.base.state_dir / "bench"
    if probe_dir is not None:
        probe_dir.mkdir(parents=True, exist_ok=True)
    log_path = folder / f"{env.database}-ledger.log"
    ledger = LedgerProcess(env, log_path=log_path, probe_dir=probe_dir, cprofile=p.cprofile)
    conn = await connect(env.settings)
    try:
        ledger.start()
        mint_messages = [(str(m.batch).encode(), m.to_json()) for m in work.mints]
        setup = await publish_and_apply(env, ledger, conn, topic=env.settings.topic_mints,
                                          messages=mint_messages, deadline=deadline, status=status,
                                          what="mint events (set-up, not timed)")
        with status.step("settling the minted ducats (VACUUM ANALYZE, CHECKPOINT; not timed)"):
            await asyncio.to_thread(pg_base.settle, env.settings.database_url, "ducats")
        _next_probe_phase(ledger)  # phases: set-up, timed, idle tail
        applied = await publish_and_apply(env, ledger, conn, topic=env.settings.topic_transactions,
                                          messages=messages, deadline=deadline, status=status, what="transfers")
        _next_probe_phase(ledger)
        await _check(conn, work)
    finally:
        await conn.close()
        await asyncio.to_thread(ledger.stop, 60.0)
    summary = {**batch_summary(ledger.batches(where="accepted"), applied.log_s), "log_s": round(applied.log_s, 3),
               "state_s": round(applied.state_s, 3), "setup_mint_s": round(setup.state_s, 3), "log": str(log_path),
               "state": state_summary([r for r in ledger.records("state.batch") if r.get("moves", 0) > 0],
                                      applied.state_s)}
    profile = load_profile(probe_dir, applied.log_s, cprofile=p.cprofile) if probe_dir is not None else None
    return applied, summary, profile


def _next_probe_phase(ledger: LedgerProcess) -> None:
    if ledger.probe_dir is not None and ledger.proc is not None:
        os.kill(ledger.proc.pid, signal.SIGUSR1)


async def _check(conn: Any, work: Workload) -> None:
    """The run counts only if the ledger accepted every transfer and every balance
    is what the generator's model says."""
    cur = await conn.execute("SELECT count(*) FROM transaction_ids WHERE seq IS NOT NULL")
    accepted = (await cur.fetchone())[0]
    cur = await conn.execute("SELECT holder, ducats FROM holder_balances WHERE ducats > 0")
    balances = dict(await cur.fetchall())
    if accepted != len(work.moves):
        raise BenchError(f"the ledger accepted {accepted} of {len(work.moves)} transfers")
    if balances != {h: n for h, n in work.final.items() if n}:
        raise BenchError("the holders' balances differ from the generator's model")


async def _kafka_baselines(env: BenchEnv, messages: list[Message], deadline: Deadline,
                           status: Status) -> list[Figure]:
    topic = await kafka_base.baseline_topic(env, env.settings.topic_transactions, "transactions")
    with status.step(f"baseline: raw produce of {len(messages):,} transfer messages"):
        produced = await kafka_base.produce(env, topic, messages)
    with status.step("baseline: raw consume + decode", total=len(messages)) as update:
        consumed = await kafka_base.consume_decode(env, topic, len(messages), deadline=deadline, on_read=update)
    n = len(messages)
    return [
        Figure(key="kafka_produce", label="raw aiokafka produce (acks=all, idempotent)", count=n,
               unit="messages", seconds=produced, versus="pipeline_transfers"),
        Figure(key="kafka_consume", label="raw aiokafka consume + orjson decode", count=n,
               unit="messages", seconds=consumed, versus="pipeline_transfers"),
    ]


async def _pg_baselines(env: BenchEnv, work: Workload, deadline: Deadline, status: Status) -> list[Figure]:
    url, n = env.settings.database_url, len(work.moves)
    first_seq = len(work.mints) + 1
    rows = transaction_rows(work.moves, first_seq=first_seq, applied_at=utc_now())
    await asyncio.to_thread(pg_base.checkpoint, url)
    with status.step(f"baseline: COPY {n:,} transaction rows", total=n) as update:
        copied = await asyncio.to_thread(pg_base.copy_transactions, url, rows, deadline=deadline, progress=update)
    chunks = holder_changes(work.moves, first_seq=first_seq, chunk=env.settings.ledger_batch)
    changes = sum(len(c) for c in chunks)
    with status.step(f"baseline: UPDATE ... FROM staging, {changes:,} holder changes", total=changes) as update:
        updated = await asyncio.to_thread(pg_base.update_holders, url, chunks, deadline=deadline, progress=update)
    return [
        Figure(key="pg_copy_transactions", label="COPY transaction rows (plain table, same indexes)", count=n,
               unit="rows", seconds=copied, versus="pipeline_transfers"),
        Figure(key="pg_update_holders", label=f"COPY + UPDATE ... FROM, {env.settings.ledger_batch:,} transfers "
               "a transaction", count=changes, unit="rows", seconds=updated, versus="pipeline_moves"),
    ]
