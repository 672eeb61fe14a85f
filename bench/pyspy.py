"""Where a server's CPU goes while a load runs: py-spy samples, summarised.

``ducats bench api --profile`` samples the API's worker processes (py-spy
``record --subprocesses --nonblocking``, raw collapsed stacks) while vegeta
offers one endpoint a fixed rate, in an extra run that is not one of the
measured ones (sampling costs CPU of its own). The summary is what a reader
needs to say what limits an endpoint:

- self time by package (the leaf frame's top-level module: ``psycopg``,
  ``starlette``, ``uvloop``, our ``serving`` ...), as a share of all samples;
- the leaf functions with the most self time;
- inclusive time of the project's own frames (``serving``, ``reads``,
  ``ducats``, ``schemas``): how much of the process a route's handler is.

py-spy shows only Python frames; time in C code (uvloop's loop, httptools,
orjson, psycopg's binary) is the self time of the Python frame that called it.
"""
from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.errors import BenchError
from bench.load import tool

TOP = 15
OURS = ("serving", "reads", "ducats", "schemas", "streams", "sinks")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*):\d+\)$")


def _where(frame: str) -> tuple[str, str]:
    """(function, file) of one collapsed-stack frame ``func (path/file.py:line)``."""
    m = _FRAME.match(frame)
    return (m["func"], m["file"]) if m else (frame, "")


def _package(file: str) -> str:
    head = file.split("/", 1)[0]
    return head.removesuffix(".py") if head else "(native)"


def summarise(raw: str, *, top: int = TOP) -> dict[str, Any]:
    """The summary of py-spy's ``--format raw`` output (one ``stack count`` per line)."""
    self_fn: Counter[str] = Counter()
    self_pkg: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        total += n
        func, file = _where(frames[-1])
        self_fn[f"{func} ({file})"] += n
        self_pkg[_package(file)] += n
        seen = set()
        for frame in frames:
            func, file = _where(frame)
            if _package(file) in OURS and (name := f"{func} ({file})") not in seen:
                seen.add(name)
                inclusive[name] += n
    if total == 0:
        raise BenchError("py-spy recorded no samples")

    def shares(c: Counter[str]) -> list[dict[str, Any]]:
        return [{"name": k, "samples": v, "share": round(v / total, 4)} for k, v in c.most_common(top)]

    return {"samples": total, "self_by_package": shares(self_pkg), "self_by_function": shares(self_fn),
            "inclusive_ours": shares(inclusive)}


async def record(pid: int, *, seconds: float, out: Path, rate: int = 200,
                 subprocesses: bool = True) -> asyncio.subprocess.Process:
    """Start py-spy sampling ``pid`` (and its children, unless told not to) for ``seconds``,
    raw stacks into ``out``."""
    return await asyncio.create_subprocess_exec(
        tool("py-spy"), "record", "--pid", str(pid), *(["--subprocesses"] if subprocesses else []),
        "--nonblocking", "--format", "raw",
        "--rate", str(rate), "--duration", str(max(1, round(seconds))), "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def finish(proc: asyncio.subprocess.Process, out: Path, timeout: float = 60) -> dict[str, Any]:
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BenchError(f"py-spy did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0 or not out.exists():
        raise BenchError(f"py-spy failed ({proc.returncode}): {err.decode(errors='replace')[-300:]}")
    return summarise(out.read_text(encoding="utf-8", errors="replace"))


def profile_tables(profiles: dict[str, dict[str, Any]]) -> list[Table]:
    tables = []
    for name, p in profiles.items():
        t = Table(title=f"py-spy: {name} at {p['rate']:,}/s, {p['samples']:,} samples")
        t.add_column("self time by package")
        t.add_column("share", justify="right")
        t.add_column("self time by function")
        t.add_column("share", justify="right")
        t.add_column("inclusive, project frames")
        t.add_column("share", justify="right")
        rows = max(len(p["self_by_package"]), len(p["self_by_function"]), len(p["inclusive_ours"]))
        for i in range(min(rows, 10)):
            cells: list[str] = []
            for key in ("self_by_package", "self_by_function", "inclusive_ours"):
                entry = p[key][i] if i < len(p[key]) else None
                cells += ["", ""] if entry is None else [entry["name"], f"{entry['share']:.1%}"]
            t.add_row(*cells)
        tables.append(t)
    return tables
