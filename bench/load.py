"""Load generators for ``ducats bench api``: vegeta for open-loop latency at a
fixed offered rate, wrk for the closed-loop maximum throughput.

Open loop matters: vegeta sends at the rate it is told whether or not the
server keeps up, so queueing shows in the latencies; a closed-loop tool like
wrk waits for each answer before the next request and hides it (it is used
here only for "how many per second at most"). Both run as subprocesses on
loopback; deploy/install.sh installs them (wrk from Debian, vegeta from the
Go module proxy into .state/bin).
"""
from __future__ import annotations

import asyncio
import base64
import re
import resource
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.errors import BenchError
from ducats.settings import PROJECT_ROOT


@dataclass(frozen=True, slots=True)
class Target:
    """One request vegeta may send: method, URL, and for a POST its body and headers."""

    method: str
    url: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def line(self) -> bytes:
        doc: dict[str, Any] = {"method": self.method, "url": self.url}
        if self.body is not None:
            doc["body"] = base64.b64encode(self.body).decode()
        if self.headers:
            doc["header"] = {k: [v] for k, v in self.headers}
        return orjson.dumps(doc)


def tool(name: str) -> str:
    """The path of ``vegeta``, ``wrk`` or ``py-spy``; a one-line error naming the fix when missing."""
    places = (PROJECT_ROOT / ".state" / "bin" / name, Path(sys.executable).parent / name)  # vegeta; py-spy
    found = shutil.which(name) or next((str(p) for p in places if p.exists()), None)
    if found is None:
        raise BenchError(f"{name} not found; fix: bash deploy/install.sh (it installs wrk, vegeta and py-spy)")
    return found


@dataclass(frozen=True, slots=True)
class Latency:
    """What one open-loop run measured (milliseconds)."""

    rate: int
    requests: int
    p50: float
    p90: float
    p99: float
    max: float
    errors: int
    statuses: dict[str, int]
    throughput: float
    generator_cpu_ms: float = 0.0  # vegeta's own CPU per request (user + system), from the same run

    def within(self, budget_ms: float) -> bool:
        """p99 within ``budget_ms`` and no errors."""
        return self.p99 <= budget_ms and self.errors == 0


async def _run(argv: list[str], stdin: bytes | None = None, timeout: float = 120) -> bytes:
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE if stdin else None,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise BenchError(f"{Path(argv[0]).name} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise BenchError(f"{Path(argv[0]).name} failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")
    return out


async def vegeta(targets: list[Target], *, rate: int, seconds: float, folder: Path, name: str,
                 ok: frozenset[int] = frozenset({200, 202, 304})) -> Latency:
    """Offer ``rate`` requests a second for ``seconds``, cycling through ``targets``."""
    folder.mkdir(parents=True, exist_ok=True)
    tfile = folder / f"{name}.targets"
    tfile.write_bytes(b"\n".join(t.line() for t in targets) + b"\n")
    results = folder / f"{name}-{rate}.bin"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # vegeta is the only child to end meanwhile
    await _run([tool("vegeta"), "attack", "-format=json", f"-targets={tfile}", f"-rate={rate}/s",
                f"-duration={seconds}s", "-timeout=5s", "-keepalive=true", f"-output={results}"],
               timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = orjson.loads(await _run([tool("vegeta"), "report", "-type=json", str(results)]))
    lat = report["latencies"]
    statuses = {str(k): int(v) for k, v in (report.get("status_codes") or {}).items()}
    bad = sum(v for k, v in statuses.items() if int(k) not in ok)
    ms = 1e-6
    return Latency(rate=rate, requests=int(report["requests"]), p50=round(lat["50th"] * ms, 3),
                   p90=round(lat["90th"] * ms, 3), p99=round(lat["99th"] * ms, 3), max=round(lat["max"] * ms, 3),
                   errors=bad, statuses=statuses, throughput=round(float(report["throughput"]), 1),
                   generator_cpu_ms=round(cpu * 1000 / max(1, int(report["requests"])), 4))


_WRK_POST = """-- unique transaction ids, so every POST is a new transfer
local n = 0
request = function()
  n = n + 1
  local body = string.format(BODY, PREFIX .. wrk.thread:get("id") .. "-" .. n)
  return wrk.format("POST", nil, HEADERS, body)
end
setup = function(thread) thread:set("id", tostring(math.random(1, 1e9))) end
"""


async def wrk(url: str, *, seconds: float, connections: int = 32, folder: Path, post: Target | None = None,
              prefix: str = "wrk") -> tuple[float, float]:
    """Requests per second wrk sustains against ``url`` (closed loop) answered 2xx/3xx, and the
    share of other answers (a 503 is the API shedding load: a pool wait over its 50 ms)."""
    argv = [tool("wrk"), "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s"]
    if post is not None:
        assert post.body is not None
        script = folder / f"{prefix}.lua"
        template = post.body.decode().replace("%", "%%").replace("@ID@", "%s")
        headers = "{" + ", ".join(f'["{k}"] = "{v}"' for k, v in post.headers) + "}"
        script.write_text(f"BODY = [[{template}]]\nPREFIX = \"{prefix}-\"\nHEADERS = {headers}\n" + _WRK_POST)
        argv += ["-s", str(script)]
    out = (await _run([*argv, url], timeout=seconds + 60)).decode()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise BenchError(f"wrk printed no Requests/sec: {out[-300:]}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    share = int(bad.group(1)) / max(1, int(total.group(1))) if bad and total else 0.0
    return round(float(rps.group(1)) * (1 - share), 1), round(share, 4)
