"""``python -m bench.probe --out FILE [--cprofile FILE]``: the ledger worker, with timers.

It runs exactly what ``ducats ledger`` runs (``streams.ledger.main``), after
wrapping, from the outside, the steps of a batch: the sink's decode, state
loads, rules and writes (each SQL helper of ``sinks.postgres.ledger_sql``), the
outbox publisher and the Kafka calls. Each wrapper adds two ``perf_counter``
calls per call, nothing per record, so the figures are the worker's own.

SIGUSR1 starts a new phase: the benchmark sends it when the untimed set-up is
done and again when the timed run is, so there are three phases (set-up,
timed, idle tail). On exit the timers of every phase go to ``--out`` as JSON;
with ``--cprofile``, cProfile runs during the second phase only and its stats
go to that file.
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import importlib
import inspect
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

Acc = dict[str, list[float]]  # name -> [calls, seconds]
# Every coroutine function of these modules is timed as "sql.<name>" (the COPY
# helpers as "sql.copy <table>"), whatever the ledger's current set of helpers is.
SQL_MODULES = ("sinks.postgres.ledger_sql", "sinks.postgres.consciousness_sql")
COPY_HELPERS = ("copy_rows", "copy_binary_rows")


class Timers:
    def __init__(self) -> None:
        self.phases: list[Acc] = [{}]

    def add(self, name: str, seconds: float) -> None:
        entry = self.phases[-1].setdefault(name, [0, 0.0])
        entry[0] += 1
        entry[1] += seconds

    def next_phase(self) -> None:
        self.phases.append({})

    def wrap(self, owner: Any, attr: str, name: str | Callable[..., str]) -> None:
        """Replace ``owner.attr`` (a coroutine function) by a timed one."""
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.add(name(*args, **kwargs) if callable(name) else name, time.perf_counter() - started)

        setattr(owner, attr, timed)

    def wrap_sync(self, owner: Any, attr: str, name: str) -> None:
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - started)

        setattr(owner, attr, timed)

    def to_json(self) -> bytes:
        return orjson.dumps([{k: {"calls": int(v[0]), "seconds": round(v[1], 4)} for k, v in p.items()}
                             for p in self.phases])


def _copy_target(cur: Any, statement: str, *rest: Any, **kw: Any) -> str:
    return "sql.copy " + statement.split()[1]  # "COPY <table> (...) FROM STDIN"


def _wrap_sql(timers: Timers) -> None:
    for name in SQL_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        for attr, fn in list(vars(module).items()):
            if attr in COPY_HELPERS:
                timers.wrap(module, attr, _copy_target)
            elif inspect.iscoroutinefunction(fn) and fn.__module__ == module.__name__:
                timers.wrap(module, attr, f"sql.{attr}")


def install(timers: Timers) -> None:
    """Wrap the ledger's steps; every name is prefixed by the layer it belongs to."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from sinks.outbox import OutboxPublisher
    from sinks.postgres.ledger import LedgerSink

    _wrap_sql(timers)
    timers.wrap(LedgerSink, "write_batch", "sink.write_batch")
    timers.wrap_sync(LedgerSink, "_decode", "sink.decode")
    timers.wrap(LedgerSink, "_load", "sink.load")
    timers.wrap(LedgerSink, "_apply_and_write", "sink.apply_and_write")
    timers.wrap(LedgerSink, "_write", "sink.write")
    timers.wrap(OutboxPublisher, "publish_pending", "outbox.publish_pending")
    timers.wrap(AIOKafkaProducer, "send", "kafka.producer_send")
    timers.wrap(AIOKafkaProducer, "commit_transaction", "kafka.commit_transaction")
    timers.wrap(AIOKafkaConsumer, "getmany", "kafka.getmany")
    timers.wrap(AIOKafkaConsumer, "commit", "kafka.consumer_commit")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.probe")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cprofile", type=Path)
    args = parser.parse_args()

    from ducats.logs import configure_logging
    from ducats.settings import load_settings
    from streams.ledger import main as run_ledger

    settings = load_settings()
    configure_logging(settings)
    timers = Timers()
    install(timers)
    profile = cProfile.Profile() if args.cprofile else None

    def next_phase(signum: int, frame: Any) -> None:
        timers.next_phase()
        if profile is not None and len(timers.phases) == 2:
            profile.enable()
        elif profile is not None and len(timers.phases) == 3:
            profile.disable()
            profile.dump_stats(args.cprofile)

    signal.signal(signal.SIGUSR1, next_phase)
    try:
        run_ledger(settings)
    finally:
        if profile is not None and len(timers.phases) == 2:  # stopped inside the second phase
            profile.disable()
            profile.dump_stats(args.cprofile)
        args.out.write_bytes(timers.to_json())


if __name__ == "__main__":
    main()
