"""``ducats bench``: end-to-end benchmarks of the ledger (see BENCHMARKS.md).

Progress goes to stderr; the result is a table on stdout followed by one JSON
line, the last line of stdout. Every run on the services is bounded by
``--timeout`` and removes its private database and topics, unless ``--keep``
(``bench codec`` runs in memory and needs neither).
"""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from ducats.settings import Settings

T = TypeVar("T")

TIMEOUT = click.option("--timeout", type=click.FloatRange(min=1.0), default=600.0, show_default=True,
                       help="Seconds the whole run may take, set-up and baselines included.")
LEDGER_BATCH = click.option("--ledger-batch", type=int, default=None,
                            help="DUCATS_LEDGER_BATCH of the ledger under test (default: the setting, 5000).")
KEEP = click.option("--keep", is_flag=True, help="Keep the private database and topics (for a post-mortem).")


GRACE_S = 60.0  # beyond --timeout, for the clean-up of a run cancelled mid-way


def run_bounded(main: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run ``main``; past ``timeout`` (plus a grace period) cancel it, which runs its
    clean-up, and fail with BenchTimeout. The benchmarks check the deadline
    themselves; this is the backstop for a call that hangs."""
    from bench.errors import BenchTimeout

    async def bounded() -> T:
        try:
            async with asyncio.timeout(timeout + GRACE_S):
                return await main
        except TimeoutError:
            raise BenchTimeout(f"benchmark cancelled after {timeout + GRACE_S:.0f} s") from None

    return asyncio.run(bounded())


@click.group()
def bench() -> None:
    """Benchmarks of the ledger, end to end, with same-run baselines."""


@bench.command()
@click.option("--ducats", type=int, default=1_000_000, show_default=True, help="Ducats to mint.")
@click.option("--size", type=int, default=10_000, show_default=True, help="Ducats per mint event, 1..10000.")
@LEDGER_BATCH
@TIMEOUT
@KEEP
@click.pass_obj
def mint(settings: Settings, ducats: int, size: int, ledger_batch: int | None, timeout: float, keep: bool) -> None:
    """Mint DUCATS ducats through the ledger; compare with raw COPY and raw Kafka."""
    from bench.mint import MintParams, run_mint
    from bench.report import Status, emit

    params = MintParams(ducats=ducats, size=size, timeout=timeout, keep=keep, ledger_batch=ledger_batch)
    result, figures = run_bounded(run_mint(settings, params, Status()), timeout)
    emit(result, f"bench mint: {ducats:,} ducats in events of {size:,}", figures)


@bench.command()
@click.option("--transfers", type=int, default=100_000, show_default=True, help="Transfers to apply (all valid).")
@click.option("--ducats-per-transfer", type=int, default=5, show_default=True, help="Ducats each transfer moves.")
@click.option("--holders", type=int, default=1_000, show_default=True, help="Holders the transfers go between.")
@click.option("--per-holder", type=int, default=1_000, show_default=True,
              help="Ducats minted to each holder first (not timed): holders x per-holder ducats in all.")
@click.option("--seed", type=int, default=20261126, show_default=True, help="Seed of the transfer generator.")
@click.option("--profile", "profile_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run the ledger with per-step timers and write them (and the log) to this folder.")
@click.option("--cprofile", is_flag=True, help="With --profile: also run the ledger under cProfile (slower).")
@LEDGER_BATCH
@TIMEOUT
@KEEP
@click.pass_obj
def transfers(settings: Settings, transfers: int, ducats_per_transfer: int, holders: int, per_holder: int,
              seed: int, profile_dir: Path | None, cprofile: bool, ledger_batch: int | None, timeout: float,
              keep: bool) -> None:
    """Apply TRANSFERS valid transfers through the ledger; compare with raw COPY,
    a raw bulk UPDATE of the same holder changes, and raw Kafka."""
    from bench.profile import profile_table
    from bench.report import Status, emit
    from bench.transfers import TransferParams, run_transfers

    if cprofile and profile_dir is None:
        raise click.UsageError("--cprofile needs --profile DIR")
    params = TransferParams(transfers=transfers, ducats_per_transfer=ducats_per_transfer, holders=holders,
                            per_holder=per_holder, seed=seed, timeout=timeout, keep=keep,
                            profile_dir=str(profile_dir) if profile_dir else None, cprofile=cprofile,
                            ledger_batch=ledger_batch)
    result, figures = run_bounded(run_transfers(settings, params, Status()), timeout)
    extra = [profile_table(result["profile"])] if "profile" in result else []
    emit(result, f"bench transfers: {transfers:,} transfers of {ducats_per_transfer} ducats "
                 f"between {holders:,} holders", figures, extra=extra)


@bench.command()
@click.option("--rate", type=int, default=1000, show_default=True, help="Transfers published per second.")
@click.option("--seconds", type=float, default=20.0, show_default=True, help="How long to publish.")
@TIMEOUT
@KEEP
@click.pass_obj
def freshness(settings: Settings, rate: int, seconds: float, timeout: float, keep: bool) -> None:
    """Time from an accepted event to its visibility in the Redis snapshot (p50..p99),
    next to raw aiokafka produce -> consume latency at the same rate."""
    import orjson
    from rich.console import Console

    from bench.freshness import FreshnessParams, freshness_table, run_freshness
    from bench.report import Status

    logs = settings.state_dir / "logs" / "bench-freshness"
    logs.mkdir(parents=True, exist_ok=True)
    params = FreshnessParams(rate=rate, seconds=seconds, timeout=timeout, keep=keep)
    result = run_bounded(run_freshness(settings, params, Status(), logs), timeout)
    Console(width=120).print(freshness_table(result))
    print(orjson.dumps(result).decode(), flush=True)


@bench.command()
@click.option("--rates", default="1000,2000,5000,10000,20000,40000", show_default=True,
              help="Offered transfer rates, per second, tried in order.")
@click.option("--seconds", type=click.FloatRange(1, 600), default=20.0, show_default=True, help="Per rate.")
@click.option("--ducats", type=click.IntRange(1_000, 10_000_000), default=3_900_000, show_default=True,
              help="Ducats minted before the sweep.")
@click.option("--holders", type=click.IntRange(2, 1_000_000), default=3_900, show_default=True)
@click.option("--ducats-per-transfer", type=click.IntRange(1, 10_000), default=5, show_default=True)
@click.option("--profile", is_flag=True, help="Sample the ledger and the worker with py-spy during the last rate.")
@click.option("--timeout", type=click.FloatRange(min=1.0), default=5400.0, show_default=True,
              help="Seconds the whole run may take, minting and baselines included.")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to draw rate against freshness (default: the state folder's logs/bench-e2e/e2e.png).")
@KEEP
@click.pass_obj
def e2e(settings: Settings, rates: str, seconds: float, ducats: int, holders: int, ducats_per_transfer: int,
        profile: bool, timeout: float, png: Path | None, keep: bool) -> None:
    """The whole pipeline (ledger and worker processes) under an open-loop load, rate
    by rate: achieved rates, freshness p50/p99, lags, peak RSS, and the same-run raw
    aiokafka produce -> consume latency; prints the highest sustainable rate."""
    import orjson
    from rich.console import Console

    from bench.e2e import E2EParams, e2e_table, plot, run_e2e
    from bench.pyspy import profile_tables
    from bench.report import Status

    if ducats // holders < ducats_per_transfer:
        raise click.BadParameter(f"{ducats:,} ducats over {holders:,} holders give fewer than "
                                 f"{ducats_per_transfer} each", param_hint="--holders")
    logs = settings.state_dir / "logs" / "bench-e2e"
    logs.mkdir(parents=True, exist_ok=True)
    params = E2EParams(rates=_rates(rates), seconds=seconds, ducats=ducats, holders=holders,
                       per_transfer=ducats_per_transfer, profile=profile, timeout=timeout, keep=keep)
    result = run_bounded(run_e2e(settings, params, Status(), logs), timeout)
    console = Console(width=160)
    console.print(e2e_table(result))
    for r in result["rates"]:
        for t in profile_tables(r.get("profiles", {})):
            console.print(t)
    result["png"] = str(plot(result, png or logs / "e2e.png"))
    console.print(f"rate against freshness: {result['png']}")
    print(orjson.dumps(result).decode(), flush=True)


def _rates(text: str) -> tuple[int, ...]:
    try:
        rates = tuple(int(r) for r in text.split(",") if r.strip())
    except ValueError:
        raise click.BadParameter(f"not a comma-separated list of rates: {text!r}") from None
    if not rates or min(rates) < 1:
        raise click.BadParameter("rates must be positive")
    return rates


@bench.command()
@click.option("--ducats", type=click.IntRange(200, 10_000_000), default=1_000_000, show_default=True,
              help="Ducats to mint (100 holders).")
@click.option("--transfers", type=click.IntRange(10, 1_000_000), default=20_000, show_default=True,
              help="Transfers of 3 ducats through the ledger before the API is measured.")
@click.option("--rates", default="500,1000,2000", show_default=True, help="Offered rates per endpoint, req/s.")
@click.option("--ceiling-rates", default="3000,5000,7000", show_default=True,
              help="Higher rates tried while an endpoint stays within its budget.")
@click.option("--seconds", type=click.FloatRange(0.5, 600), default=10.0, show_default=True, help="Per rate.")
@click.option("--wrk-seconds", type=click.FloatRange(1, 600), default=5.0, show_default=True)
@click.option("--workers", type=click.IntRange(1, 16), default=2, show_default=True, help="ducats api --workers.")
@click.option("--only", default="", help="Comma-separated fragments of endpoint names to measure "
              "(the floor and the raw baselines always are), e.g. 'ducats/{id},POST'.")
@click.option("--profile", is_flag=True, help="Also sample the API workers with py-spy, per endpoint, in an extra "
              "run at --profile-rate (not one of the measured runs).")
@click.option("--profile-rate", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@TIMEOUT
@KEEP
@click.pass_obj
def api(settings: Settings, ducats: int, transfers: int, rates: str, ceiling_rates: str, seconds: float,
        wrk_seconds: float, workers: int, only: str, profile: bool, profile_rate: int, timeout: float,
        keep: bool) -> None:
    """The HTTP API at fixed offered rates (vegeta, open loop) next to its floor, a raw Redis GET and a
    raw PostgreSQL SELECT on the same server; the highest rate within budget; wrk's maximum."""
    from rich.console import Console

    from bench.api import ApiParams, api_table, run_api
    from bench.pyspy import profile_tables
    from bench.report import Status

    logs = settings.state_dir / "logs" / "bench-api"
    logs.mkdir(parents=True, exist_ok=True)
    params = ApiParams(ducats=ducats, transfers=transfers, rates=_rates(rates), ceiling_rates=_rates(ceiling_rates),
                       seconds=seconds, warm_up=min(2.0, seconds), wrk_seconds=wrk_seconds, workers=workers, keep=keep,
                       only=tuple(o.strip() for o in only.split(",") if o.strip()), profile=profile,
                       profile_rate=profile_rate, profile_seconds=max(2.0, seconds))
    result = run_bounded(run_api(settings, params, Status(), logs), timeout)
    console = Console(width=160)
    console.print(api_table(result))
    for table in profile_tables(result["profiles"]):
        console.print(table)
    import orjson

    print(orjson.dumps(result).decode(), flush=True)


@bench.command()
@click.option("--events", type=int, default=100_000, show_default=True, help="Accepted events to fold.")
@TIMEOUT
@click.pass_obj
def metrics(settings: Settings, events: int, timeout: float) -> None:
    """How fast one Faust worker folds the accepted log into the snapshot,
    next to raw aiokafka consume + decode of the same records."""
    from bench.metrics import run_metrics
    from bench.report import Status, emit

    logs = settings.state_dir / "logs" / "bench-metrics"
    logs.mkdir(parents=True, exist_ok=True)
    result, figures = run_bounded(run_metrics(settings, events=events, status=Status(), logs=logs), timeout)
    emit(result, f"bench metrics: {events:,} accepted events", figures)


@bench.command()
@click.option("--ids", type=int, default=10_000, show_default=True,
              help="Ducat ids in the largest transfer measured (1 and 100 are measured too).")
@click.option("--records", type=int, default=200, show_default=True, help="Records decoded per round.")
@click.option("--repeat", type=int, default=5, show_default=True, help="Rounds; the fastest one counts.")
def codec(ids: int, records: int, repeat: int) -> None:
    """How fast the codec decodes and validates transfers, next to plain
    orjson.loads of the same bytes (in memory, no services)."""
    from bench.codec import CodecParams, run_codec
    from bench.report import emit

    result, figures = run_codec(CodecParams(ids=ids, records=records, repeat=repeat))
    emit(result, f"bench codec: transfers up to {ids:,} ids, best of {repeat} rounds of {records:,}", figures)


@bench.command()
@click.option("--reps", type=click.IntRange(min=1), default=3, show_default=True,
              help="Repetitions of each scenario (each figure gets this many samples).")
@click.option("--rate", type=click.IntRange(min=10), default=200, show_default=True,
              help="Valid transfers published per second for the whole run.")
@click.option("--timeout", type=click.FloatRange(min=1.0), default=900.0, show_default=True,
              help="Seconds the whole run may take, set-up included.")
@KEEP
@click.pass_obj
def recovery(settings: Settings, reps: int, rate: int, timeout: float, keep: bool) -> None:
    """Seconds until the pipeline works again after a kill -9: a restarted worker, a
    surviving replica, the ledger's hot standby (median and max over REPS)."""
    from rich.console import Console

    from bench.recovery import RecoveryParams, recovery_json, recovery_table, run_recovery
    from bench.report import Status

    logs = settings.state_dir / "logs" / "bench-recovery"
    logs.mkdir(parents=True, exist_ok=True)
    params = RecoveryParams(reps=reps, rate=rate, timeout=timeout, keep=keep)
    result, figures = run_bounded(run_recovery(settings, params, Status(), logs), timeout)
    Console(width=140).print(recovery_table(result, figures))
    print(recovery_json(result, figures), flush=True)


@bench.command()
@click.option("--holders", type=click.IntRange(10), default=100_000, show_default=True)
@click.option("--edges", type=click.IntRange(10), default=1_000_000, show_default=True, help="Distinct directed pairs.")
@click.option("--groups", type=click.IntRange(1), default=500, show_default=True,
              help="Groups of holders most edges stay inside (the communities to find).")
@click.option("--history-hours", type=click.IntRange(1, 24 * 7), default=24, show_default=True,
              help="Hours of metric snapshots, one a second, for the evolution endpoint.")
@click.option("--wrk-seconds", type=click.FloatRange(1), default=10.0, show_default=True)
@click.option("--connections", type=click.IntRange(1, 256), default=8, show_default=True)
@click.option("--logs", type=click.Path(file_okay=False, path_type=Path), default=Path(".state/bench-analytics"),
              show_default=True)
@TIMEOUT
@KEEP
@click.pass_obj
def analytics(settings: Settings, holders: int, edges: int, groups: int, history_hours: int, wrk_seconds: float,
              connections: int, logs: Path, timeout: float, keep: bool) -> None:
    """Network intelligence at scale: `ducats analyze` (time, peak RSS) against raw igraph on
    the same edges, and the analytical endpoints' p50/p99 under wrk."""
    from bench.analytics import AnalyticsParams, analytics_table, run_analytics
    from bench.errors import BenchError
    from bench.report import Status, emit

    if edges > holders * (holders - 1) // 2:
        raise BenchError(f"--edges {edges:,} is more than {holders:,} holders can have as distinct pairs")
    p = AnalyticsParams(holders=holders, edges=edges, groups=groups, history_hours=history_hours,
                        wrk_seconds=wrk_seconds, connections=connections, timeout=timeout, keep=keep)
    result, figures = run_bounded(run_analytics(settings, p, Status(), logs), timeout)
    emit(result, f"bench analytics: {holders:,} holders, {edges:,} edges", figures, extra=[analytics_table(result)])
