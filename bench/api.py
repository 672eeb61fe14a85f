"""``ducats bench api``: the HTTP API's latency at fixed offered rates, next to
its floor, on a pipeline of ``--ducats`` ducats.

Set-up: a private database and topics; a ledger and a worker; ``--ducats``
ducats minted to 100 holders, then ``--transfers`` transfers of 3 ducats, so
that the snapshot, the hot cache, provenance and recent transactions have
data; then ``ducats api --workers N``. Each endpoint is offered each
``--rates`` for ``--seconds`` by vegeta (open loop), after a warm-up. Beside
them, on the same server and at the same rates: the **floor** (``/api/ping``,
a route that touches nothing), a raw Redis GET, a raw PostgreSQL
primary-key SELECT through the API's own pool, and a raw Kafka produce with
the writes' own producer, acknowledged (``/_probe/*``). The figure per
endpoint and rate is p50, p99, errors, and p99 / the floor's p99 at that rate.
Then the highest rate (of ``--ceiling-rates``) at which each class stays
within the seed's budget (cached 50 ms, database 200 ms, p99, no errors), and
wrk's closed-loop maximum per endpoint.

After each endpoint the run waits for the server to **settle** (every breaker
closed, no request waiting for a pooled connection, every process's read pool
wholly free), nudging it with one request of that endpoint every 0.5 s, since
a breaker leaves "open" only when a request comes. It records how long that
took and the pool it found, so an overload that the server does not recover
from shows in the result instead of in the next endpoint's figures.
``--only`` measures some endpoints (the floor and the raw baselines always);
``--profile`` adds, per endpoint, a py-spy run at ``--profile-rate`` that is
not one of the measured ones (bench/pyspy.py).
"""
from __future__ import annotations

import asyncio
import random
import re
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

from bench import pyspy
from bench.env import BenchEnv
from bench.errors import BenchError
from bench.freshness import close_with_worker, paced_send
from bench.load import Latency, Target, vegeta, wrk
from bench.report import Status, code_version, machine, utc_now
from bench.workload import TransferChain, holder_names, holdings_of, mint_plan
from ducats.kafka import TopicSpec
from ducats.procs import WorkerProcess, free_port
from ducats.settings import Settings
from reads.pipeline import live_workers, wait_caught_up
from schemas.ducat_id import ducat_str
from serving.auth import new_key
from serving.routes.site import PROBE_TOPIC

HOLDERS = 100
BUDGET_MS = {"cached": 50.0, "database": 200.0, "write": 200.0, "baseline": 50.0}


@dataclass(frozen=True, slots=True)
class ApiParams:
    ducats: int = 1_000_000
    transfers: int = 20_000
    rates: tuple[int, ...] = (500, 1000, 2000)
    ceiling_rates: tuple[int, ...] = (3000, 5000, 7000)
    seconds: float = 10.0
    warm_up: float = 2.0
    wrk_seconds: float = 5.0
    workers: int = 2
    keep: bool = False
    only: tuple[str, ...] = ()     # endpoint name fragments; the baselines are always measured
    profile: bool = False
    profile_rate: int = 1000
    profile_seconds: float = 10.0
    settle_timeout: float = 30.0


@dataclass
class Endpoint:
    name: str
    kind: str                      # baseline, cached, database, write
    targets: Callable[[int], list[Target]]  # rate x seconds -> what to send
    wrk_url: str = ""
    wrk_post: Target | None = None
    runs: dict[int, Latency] = field(default_factory=dict)
    ceiling: int | None = None
    max_rps: float | None = None
    wrk_errors: float | None = None
    after: dict[str, Any] = field(default_factory=dict)    # the settle step's findings
    profile: dict[str, Any] | None = None

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.name).strip("-")


async def run_api(base: Settings, p: ApiParams, status: Status, logs: Path) -> dict[str, Any]:
    env = await BenchEnv.create(base, keep=p.keep)
    s = env.settings
    key, digest = new_key()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs = [WorkerProcess(env=env.ledger_env(), command="ledger", log_path=logs / "ledger.log"),
             WorkerProcess(env=env.ledger_env(), command="worker", log_path=logs / "worker.log")]
    api = WorkerProcess(env=env.ledger_env(DUCATS_API_PORT=str(port), DUCATS_API_KEYS=digest, DUCATS_API_PROBES="true",
                                           DUCATS_API_WRITE_LIMIT=""),
                        command="api", args=("--workers", str(p.workers)), log_path=logs / "api.log")
    try:
        # the raw produce baseline's topic, shaped like the input topic the POSTs go to
        await env.add_topics([TopicSpec(name=f"{s.topic_prefix}.{PROBE_TOPIC}", partitions=s.ledger_partitions)])
        for proc in procs:
            proc.start()
        with status.step("waiting for the worker"):
            while not await live_workers(s):
                await asyncio.sleep(0.2)
        data = await _seed(s, p, status)
        api.start()
        await _wait_http(url + "/healthz", api)
        await _wait_snapshot(url, data["last_seq"])
        endpoints = _selected(_endpoints(url, key, data, p), p.only)
        folder = logs / "vegeta"
        for ep in endpoints:
            await _measure(ep, p, folder, status)
            ep.after = await _settle(url, ep, p.settle_timeout, status)
            if p.profile:
                ep.profile = await _profile(api.pid, ep, p, folder, status)
                if ep.profile["errors"]:  # an overload: let it pass before the next endpoint
                    await _settle(url, ep, p.settle_timeout, status)
        await _ceilings(endpoints, url, p, folder, status)
        for ep in endpoints:
            if ep.wrk_url:
                with status.step(f"wrk: {ep.name}"):
                    ep.max_rps, ep.wrk_errors = await wrk(ep.wrk_url, seconds=p.wrk_seconds, folder=folder,
                                                          post=ep.wrk_post, prefix=f"wrk-{time.time_ns()}")
                if ep.wrk_errors:
                    await _settle(url, ep, p.settle_timeout, status)
        return {**_result(p, endpoints, data), "database": env.database, "topic_prefix": s.topic_prefix}
    finally:
        api.stop(timeout=15)
        for proc in procs:
            proc.stop()
        await close_with_worker(env)


async def _seed(s: Settings, p: ApiParams, status: Status) -> dict[str, Any]:
    per_holder = max(1, p.ducats // HOLDERS)
    mints = mint_plan(holders=holder_names(HOLDERS), per_holder=per_holder, timestamp=utc_now())
    with status.step(f"minting {per_holder * HOLDERS:,} ducats"):
        await paced_send(s, s.topic_mints, [(m.holder.encode(), m.to_json()) for m in mints], 100_000)
        await wait_caught_up(s, timeout=1800)
    chain = TransferChain(holdings=holdings_of(mints), ducats_per_transfer=3, seed=7)
    stamp = utc_now()
    moves = [chain.next(transaction_id=f"b-{i:08d}", timestamp=stamp) for i in range(p.transfers)]
    with status.step(f"{p.transfers:,} transfers through the ledger"):
        await paced_send(s, s.topic_transactions, [(m.sender.encode(), m.to_transfer().to_json()) for m in moves],
                          20_000)
        await wait_caught_up(s, timeout=1800)
    moved = sorted({d for m in moves for d in m.ducats})
    return {"ducats": per_holder * HOLDERS, "transfers": p.transfers, "last_seq": len(mints) + p.transfers,
            "moved": [ducat_str(d) for d in moved], "transactions": [m.transaction_id for m in moves],
            "holders": holder_names(HOLDERS), "all": [ducat_str(d) for ds in holdings_of(mints).values() for d in ds]}


def _get(url: str) -> Callable[[int], list[Target]]:
    return lambda n: [Target("GET", url)]


def _many(urls: list[str]) -> Callable[[int], list[Target]]:
    return lambda n: [Target("GET", u) for u in urls]


def _endpoints(url: str, key: str, data: dict[str, Any], p: ApiParams) -> list[Endpoint]:
    rng = random.Random(3)
    some = rng.sample(data["all"], min(2000, len(data["all"])))
    moved = rng.sample(data["moved"], min(2000, len(data["moved"])))
    txs = rng.sample(data["transactions"], min(2000, len(data["transactions"])))
    auth = (("Authorization", f"Bearer {key}"), ("Content-Type", "application/json"))
    holders = data["holders"]

    def posts(n: int) -> list[Target]:
        tag = time.time_ns()
        return [Target("POST", f"{url}/api/transactions", body=_transfer(f"p-{tag}-{i}", rng, holders, some),
                       headers=auth) for i in range(n)]

    template = Target("POST", f"{url}/api/transactions", body=orjson.dumps(
        {"transactionId": "@ID@", "timestamp": "2026-11-26T12:00:00Z", "from": holders[0], "to": holders[1],
         "ducatIds": [some[0]]}), headers=auth)
    return [
        Endpoint("floor /api/ping", "baseline", _get(f"{url}/api/ping"), f"{url}/api/ping"),
        Endpoint("raw Redis GET", "baseline", _get(f"{url}/_probe/redis"), f"{url}/_probe/redis"),
        Endpoint("raw PostgreSQL PK SELECT", "baseline", _get(f"{url}/_probe/postgres"), f"{url}/_probe/postgres"),
        Endpoint("raw Kafka produce (acks=all)", "baseline", lambda n: [Target("POST", f"{url}/_probe/kafka")],
                 f"{url}/_probe/kafka", Target("POST", f"{url}/_probe/kafka", body=b"@ID@")),
        Endpoint("GET /api/metrics/current", "cached", _get(f"{url}/api/metrics/current"),
                 f"{url}/api/metrics/current"),
        Endpoint("GET /api/ducats/top-circulating", "cached", _get(f"{url}/api/ducats/top-circulating?limit=10"),
                 f"{url}/api/ducats/top-circulating?limit=10"),
        Endpoint("GET /api/velocity/realtime", "cached", _get(f"{url}/api/velocity/realtime"),
                 f"{url}/api/velocity/realtime"),
        Endpoint("GET /api/ducats/{id}", "database", _many([f"{url}/api/ducats/{d}" for d in some]),
                 f"{url}/api/ducats/{some[0]}"),
        Endpoint("GET /api/ducats/{id}/history", "database",
                 _many([f"{url}/api/ducats/{d}/history?limit=50" for d in moved]),
                 f"{url}/api/ducats/{moved[0]}/history?limit=50"),
        Endpoint("GET /api/transactions/recent", "database", _get(f"{url}/api/transactions/recent?limit=50"),
                 f"{url}/api/transactions/recent?limit=50"),
        Endpoint("GET /api/holders/{holder}", "database",
                 _many([f"{url}/api/holders/{h}?limit=100" for h in holders]), f"{url}/api/holders/{holders[0]}"),
        Endpoint("GET /api/transactions/{id}", "database", _many([f"{url}/api/transactions/{t}" for t in txs]),
                 f"{url}/api/transactions/{txs[0]}"),
        Endpoint("POST /api/transactions", "write", posts, f"{url}/api/transactions", template),
    ]


def _selected(endpoints: list[Endpoint], only: tuple[str, ...]) -> list[Endpoint]:
    if not only:
        return endpoints
    chosen = [ep for ep in endpoints
              if ep.kind == "baseline" or any(o.lower() in ep.name.lower() for o in only)]
    if len(chosen) == sum(ep.kind == "baseline" for ep in endpoints):
        raise BenchError(f"--only {','.join(only)} matches no endpoint; names: "
                         + ", ".join(ep.name for ep in endpoints if ep.kind != "baseline"))
    return chosen


def _transfer(tx: str, rng: random.Random, holders: list[str], ducats: list[str]) -> bytes:
    a, b = rng.sample(holders, 2)
    return orjson.dumps({"transactionId": tx, "timestamp": "2026-11-26T12:00:00Z", "from": a, "to": b,
                         "ducatIds": [rng.choice(ducats)]})


async def _measure(ep: Endpoint, p: ApiParams, folder: Path, status: Status) -> None:
    low = min(p.rates)
    await vegeta(ep.targets(int(low * p.warm_up) + 1), rate=low, seconds=p.warm_up, folder=folder,
                 name=f"{ep.slug}-warm")
    for rate in p.rates:
        with status.step(f"{ep.name} at {rate:,}/s"):
            ep.runs[rate] = await vegeta(ep.targets(int(rate * p.seconds) + 1), rate=rate, seconds=p.seconds,
                                         folder=folder, name=ep.slug)


_SAMPLE = re.compile(r'^(?P<name>ducats_api_breaker_state|ducats_api_pg_pool)\{(?P<labels>[^}]*)\} (?P<value>\S+)$',
                     re.MULTILINE)


def server_state(exposition: str) -> dict[str, Any]:
    """The breakers (max over processes) and each process's read pool, from /metrics."""
    breakers: dict[str, int] = {}
    pools: dict[str, dict[str, int]] = {}
    for m in _SAMPLE.finditer(exposition):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m["labels"]))
        value = int(float(m["value"]))
        if m["name"] == "ducats_api_breaker_state":
            breakers[labels["service"]] = max(value, breakers.get(labels["service"], 0))
        else:
            pools.setdefault(labels.get("pid", "-"), {})[labels["stat"]] = value
    return {"breakers": breakers, "pools": pools}


def _calm(state: dict[str, Any]) -> bool:
    return (all(v == 0 for v in state["breakers"].values())
            and all(p.get("waiting", 0) == 0 and p.get("available", 0) == p.get("size", 0)
                    for p in state["pools"].values()))


def _fetch(target: Target) -> None:
    request = urllib.request.Request(target.url, data=target.body, method=target.method,  # noqa: S310 loopback
                                     headers=dict(target.headers))
    try:
        with urllib.request.urlopen(request, timeout=2) as r:  # noqa: S310
            r.read()
    except OSError:
        pass  # a 503 while the breaker is open is what is being waited out


async def _settle(url: str, ep: Endpoint, timeout: float, status: Status, calm_s: float = 0.6,
                  every: float = 0.2) -> dict[str, Any]:
    """Wait until the server has been calm for ``calm_s`` (longer than the pool gauges' refresh,
    0.5 s), polling /metrics every ``every`` s and nudging it with one of the endpoint's requests."""
    start = time.monotonic()
    calm_since: float | None = None
    settled, state = False, {}
    with status.step(f"{ep.name}: waiting for the server to settle"):
        while time.monotonic() - start < timeout:
            await asyncio.to_thread(_fetch, ep.targets(1)[0])
            await asyncio.sleep(every)
            state = server_state(await asyncio.to_thread(_read, url + "/metrics"))
            now = time.monotonic()
            if not _calm(state):
                calm_since = None
            elif calm_since is None:
                calm_since = now
            elif now - calm_since >= calm_s:
                settled = True
                break
    took = round(calm_since - start, 2) if settled and calm_since is not None else None
    return {"settled": settled, "settle_s": took, **state}


def _read(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()  # type: ignore[no-any-return]


async def _profile(pid: int, ep: Endpoint, p: ApiParams, folder: Path, status: Status) -> dict[str, Any]:
    out = folder / f"{ep.slug}-pyspy.txt"
    rate = p.profile_rate
    with status.step(f"{ep.name}: py-spy at {rate:,}/s"):
        spy = await pyspy.record(pid, seconds=p.profile_seconds + 1, out=out)
        await asyncio.sleep(0.5)  # py-spy attaches to the workers
        lat = await vegeta(ep.targets(int(rate * p.profile_seconds) + 1), rate=rate, seconds=p.profile_seconds,
                           folder=folder, name=f"{ep.slug}-profiled")
        summary = await pyspy.finish(spy, out)
    return {**summary, "rate": rate, "p50_ms": lat.p50, "p99_ms": lat.p99, "errors": lat.errors, "raw": str(out)}


async def _ceilings(endpoints: list[Endpoint], url: str, p: ApiParams, folder: Path, status: Status) -> None:
    """The highest offered rate within the class budget, starting from the measured ones."""
    for ep in endpoints:
        budget = BUDGET_MS[ep.kind]
        ok = [r for r, lat in ep.runs.items() if lat.within(budget)]
        ep.ceiling = max(ok) if ok else None
        if ep.ceiling is None or ep.ceiling < max(p.rates):
            continue
        for rate in p.ceiling_rates:
            with status.step(f"{ep.name}: within {budget:.0f} ms at {rate:,}/s?"):
                lat = await vegeta(ep.targets(int(rate * p.seconds) + 1), rate=rate, seconds=p.seconds,
                                   folder=folder, name=f"{ep.slug}-ceiling")
            ep.runs[rate] = lat
            if not lat.within(budget):
                break
            ep.ceiling = rate
        await _settle(url, ep, p.settle_timeout, status)


def _result(p: ApiParams, endpoints: list[Endpoint], data: dict[str, Any]) -> dict[str, Any]:
    floor = endpoints[0]
    rows = []
    for ep in endpoints:
        for rate, lat in sorted(ep.runs.items()):
            base = floor.runs.get(rate)
            rows.append({"endpoint": ep.name, "kind": ep.kind, "rate": rate, "requests": lat.requests,
                         "p50_ms": lat.p50, "p90_ms": lat.p90, "p99_ms": lat.p99, "max_ms": lat.max,
                         "errors": lat.errors, "statuses": lat.statuses, "throughput": lat.throughput,
                         "vegeta_cpu_ms_per_request": lat.generator_cpu_ms,
                         "floor_p99_ms": None if base is None else base.p99,
                         "p99_to_floor": None if base is None or base.p99 == 0 else round(lat.p99 / base.p99, 2)})
    return {"benchmark": "api", "date": utc_now(), "machine": machine(), "code": code_version(),
            "ducats": data["ducats"], "transfers": data["transfers"], "workers": p.workers,
            "seconds": p.seconds, "rates": list(p.rates), "runs": rows,
            "ceilings": {ep.name: {"kind": ep.kind, "budget_ms": BUDGET_MS[ep.kind], "rate": ep.ceiling}
                         for ep in endpoints},
            "max_rps": {ep.name: ep.max_rps for ep in endpoints},
            "wrk_error_share": {ep.name: ep.wrk_errors for ep in endpoints},
            "after": {ep.name: ep.after for ep in endpoints},
            "profiles": {ep.name: ep.profile for ep in endpoints if ep.profile is not None}}


def api_table(result: dict[str, Any]) -> Table:
    t = Table(title=f"bench api: {result['ducats']:,} ducats, ducats api --workers {result['workers']}, "
                    f"{result['seconds']:.0f} s per rate (vegeta, open loop)")
    for col in ("endpoint", "rate/s", "p50 ms", "p99 ms", "errors", "p99 / floor", "within budget at", "wrk max/s",
                "settled after"):
        t.add_column(col, justify="left" if col == "endpoint" else "right")
    seen: set[str] = set()
    for r in result["runs"]:
        first = r["endpoint"] not in seen
        seen.add(r["endpoint"])
        ceiling = result["ceilings"][r["endpoint"]]
        t.add_row(r["endpoint"] if first else "", f"{r['rate']:,}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                  str(r["errors"]), "" if r["p99_to_floor"] is None else f"{r['p99_to_floor']:.2f}",
                  (f"{ceiling['rate']:,}/s" if ceiling["rate"] else "-") if first else "",
                  (f"{result['max_rps'][r['endpoint']]:,.0f}" if result["max_rps"][r["endpoint"]] else "-")
                  if first else "", _settled(result["after"].get(r["endpoint"], {})) if first else "")
    return t


def _settled(after: dict[str, Any]) -> str:
    if not after:
        return "-"
    if after["settled"]:
        return f"{after['settle_s']:.1f} s"
    return "NOT settled: " + ", ".join(f"{k} {v}" for k, v in after["breakers"].items() if v) + " " + " ".join(
        f"pool {p.get('available', 0)}/{p.get('size', 0)} free" for p in after["pools"].values())


async def _wait_http(url: str, proc: WorkerProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310  (loopback only)
                return
        except OSError:
            if not proc.alive:
                raise BenchError(f"ducats api exited; see {proc.log_path}") from None
            if time.monotonic() > deadline:
                raise BenchError(f"ducats api did not answer {url} within {timeout:.0f} s") from None
            await asyncio.sleep(0.2)


async def _wait_snapshot(url: str, seq: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/api/metrics/current", timeout=2) as r:  # noqa: S310
                if orjson.loads(r.read())["position"]["seq"] >= seq:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"the API never served a snapshot at seq {seq}")
        await asyncio.sleep(0.5)
