"""What a benchmark shows: progress on stderr, then a table and one JSON line.

A *figure* is a count of things done in some seconds. The pipeline's figures
come first; each baseline names the pipeline figure it is compared with, and
its ratio is pipeline rate / baseline rate (0.25: the pipeline goes at a
quarter of that baseline's speed). On a shared, noisy machine the ratios of
one run are what to compare across runs, not the rates.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


@dataclass(frozen=True, slots=True, kw_only=True)
class Figure:
    key: str               # JSON key, e.g. "pg_copy"
    label: str             # what was measured, for people
    count: int
    unit: str              # what was counted: ducats, events, rows, messages
    seconds: float
    versus: str | None = None  # the pipeline figure this baseline is compared with

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


class Status:
    """Progress on stderr: a rich bar on a terminal, else one line per finished step."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, log_path=False)

    @contextlib.contextmanager
    def step(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        """Yields ``update(completed)``; logs how long the step took."""
        started = time.perf_counter()
        if self.console.is_terminal:
            columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
            with Progress(*columns, console=self.console, transient=True) as bar:
                task = bar.add_task(description, total=total)
                yield lambda n: bar.update(task, completed=n)
        else:
            yield lambda n: None
        self.say(f"{description}: {time.perf_counter() - started:.1f} s")

    def say(self, message: str) -> None:
        self.console.log(message, highlight=False)


def ratio(pipeline: Figure, baseline: Figure) -> float:
    return pipeline.rate / baseline.rate


def figures_json(figures: list[Figure]) -> dict[str, dict[str, Any]]:
    by_key = {f.key: f for f in figures}
    out: dict[str, dict[str, Any]] = {}
    for f in figures:
        entry: dict[str, Any] = {"label": f.label, "count": f.count, "unit": f.unit,
                                 "seconds": round(f.seconds, 4), "per_s": round(f.rate, 1)}
        if f.versus is not None:
            entry["versus"] = f.versus
            entry["ratio"] = round(ratio(by_key[f.versus], f), 4)
        out[f.key] = entry
    return out


def table(title: str, figures: list[Figure]) -> Table:
    by_key = {f.key: f for f in figures}
    t = Table(title=title, title_justify="left")
    for name, justify in (("figure", "left"), ("count", "right"), ("seconds", "right"),
                          ("rate /s", "right"), ("pipeline ÷ baseline", "right")):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for f in figures:
        r = "" if f.versus is None else f"{ratio(by_key[f.versus], f):.3f}  ({f.versus})"
        t.add_row(f.label, f"{f.count:,} {f.unit}", f"{f.seconds:.3f}", f"{f.rate:,.0f}", r)
    return t


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM and the load average when the run ended."""
    model = ""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in open("/proc/meminfo", encoding="utf-8"):
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
                break
    return {"nproc": os.cpu_count(), "cpu": model or platform.processor(), "ram_bytes": ram,
            "ram_gib": round(ram / (1 << 30), 1), "loadavg": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version()}


LEDGER_SOURCES = ("sinks/**/*.py", "sinks/**/*.sql", "streams/ledger.py", "ducats/domain/*.py", "schemas/*.py",
                  "schemas/*.json")


def code_version() -> dict[str, Any]:
    """Which ledger code ran: a hash of its sources, and the git commit and whether
    those sources differ from it (null outside a git checkout)."""
    from ducats.settings import PROJECT_ROOT

    digest = hashlib.sha256()
    for pattern in LEDGER_SOURCES:
        for path in sorted(PROJECT_ROOT.glob(pattern)):
            digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    out: dict[str, Any] = {"ledger_sources_sha256": digest.hexdigest()[:16], "git_commit": None, "dirty": None}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        git = ["git", "-C", str(PROJECT_ROOT)]
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            status = subprocess.run([*git, "status", "--porcelain", "--", "sinks", "streams", "ducats/domain",
                                     "schemas"], capture_output=True, text=True, timeout=10)
            out.update(git_commit=head.stdout.strip(), dirty=bool(status.stdout.strip()))
    return out


def emit(result: dict[str, Any], title: str, figures: list[Figure], *, extra: Sequence[Table] = (),
         console: Console | None = None) -> None:
    """The tables (stdout, for people), then the whole result as one JSON line (stdout, last line)."""
    out = console or Console(width=120)
    out.print(table(title, figures))
    for t in extra:
        out.print(t)
    print(orjson.dumps({**result, "figures": figures_json(figures)}).decode(), flush=True)


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
