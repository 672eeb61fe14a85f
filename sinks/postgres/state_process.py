"""The ducat-state sink in a process of its own (docs/throughput.md, step 4).

In the ledger's process the sink shared its event loop and its GIL: its Python
(rules, memories, rows) held up the ledger's batches. Here the leading ledger's
term starts it as a child (``python -m sinks.postgres.state_process``) and
talks to it over two pipes:

- **wake**: the ledger writes a byte to the child's stdin after each commit;
  the child applies ranges until it is caught up, then waits for the next byte
  or ``IDLE_WAIT``. The end of its stdin means the ledger is gone: it exits.
- **stop**: SIGTERM; the child finishes the range in hand (its commit and its
  hot ducats' Redis write) and exits 0. The ledger sends SIGKILL after
  ``STOP_WAIT``.
- **report**: the child writes one JSON line per look at the log to its stdout;
  the ledger turns each into its gauges, histogram and ``state.batch`` log line
  (:func:`sinks.postgres.state.record`), so ``/metrics`` and the log stay the
  ledger's.

The child gets the ledger's settings as JSON in ``DUCATS_STATE_SETTINGS`` (a
test's settings may exist only in memory), logs to stderr (the ledger's), and
exits 75 on a retriable error, 1 on a permanent one. The kernel kills it when
its parent dies (``PR_SET_PDEATHSIG``), and it is in the ledger's process
group, so ``kill -9`` of the ledger leaves no sink behind. Every guarantee of
the sink itself (one transaction per range with its position, the row lock
that lets two sinks only take turns) is in sinks/postgres/state.py, unchanged.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import os
import signal
import sys
import time

import orjson

from ducats.errors import EXIT_PERMANENT, DucatsError
from ducats.logs import get_logger
from ducats.settings import Settings
from sinks.errors import StateSinkExited
from sinks.postgres.state import StateReport, StateSink, record

__all__ = ["StateChild"]
log = get_logger(__name__)
SETTINGS_ENV = "DUCATS_STATE_SETTINGS"
STOP_WAIT = 5.0  # seconds between SIGTERM and SIGKILL when a term ends
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child before exec
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class StateChild:
    """The parent's side: start, wake (``set()``, so a term holds it where it held an Event),
    ``task`` (reads the reports; raises StateSinkExited once the child is gone), ``stop()``."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.task: asyncio.Task[None] = asyncio.create_task(self._watch(), name="ducat-state-sink")

    @classmethod
    async def start(cls, settings: Settings) -> StateChild:
        env = {**os.environ, SETTINGS_ENV: settings.model_dump_json()}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sinks.postgres.state_process", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, env=env, preexec_fn=_die_with_parent)
        log.info("state.process", pid=proc.pid)
        return cls(proc)

    def set(self) -> None:
        """Wake the child: the ledger has committed a batch. Never blocks, never raises."""
        stdin = self.proc.stdin
        if stdin is not None and not stdin.is_closing():
            with contextlib.suppress(OSError):
                stdin.write(b"w")

    async def _watch(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            try:
                r = orjson.loads(line)
                seconds = r.pop("seconds")
                report = StateReport(**r)
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                log.warning("state.process.output", line=line[:200].decode(errors="replace"))
                continue
            record(report, seconds)
        code = await self.proc.wait()
        raise StateSinkExited(f"the ducat-state sink's process exited with code {code}",
                              retriable=code != EXIT_PERMANENT)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_WAIT; the reader task is cancelled. Never raises."""
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_WAIT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()


async def _wakes(wake: asyncio.Event) -> None:
    """Set ``wake`` for every read from stdin; return at its end (the ledger is gone)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        wake.set()


def _report(report: StateReport, seconds: float) -> None:
    sys.stdout.buffer.write(orjson.dumps({**dataclasses.asdict(report), "seconds": seconds}) + b"\n")
    sys.stdout.buffer.flush()


async def _child(settings: Settings) -> int:
    sink = StateSink(settings=settings)
    await sink.connect()
    wake, stop = asyncio.Event(), asyncio.Event()

    def stopping() -> None:  # SIGTERM (the term ends): finish the range and its Redis write, then exit 0
        stop.set()
        wake.set()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping)
    tasks = [asyncio.create_task(sink.run(wake, _report, stop)), asyncio.create_task(_wakes(wake))]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            t.result()  # the sink's error leaves here; the end of stdin returns normally
        return 0
    finally:
        for t in tasks:
            t.cancel()
        await sink.stop()


def main() -> None:  # pragma: no cover - run as the child process; tests drive it through the ledger
    from ducats.logs import configure_logging

    started = time.perf_counter()
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure_logging(settings)  # a ledger gone before PR_SET_PDEATHSIG took hold: stdin is at its end
    log.info("state.process.started", ms=round((time.perf_counter() - started) * 1000, 1))
    try:
        code = asyncio.run(_child(settings))
    except DucatsError as exc:
        log.error("state.failed", error=str(exc), retriable=exc.retriable)
        code = exc.exit_code
    except Exception as exc:  # a bug: permanent, with its traceback
        log.exception("state.failed", error=repr(exc))
        code = EXIT_PERMANENT
    sys.exit(code)


if __name__ == "__main__":
    main()
