"""The API's Prometheus metrics and access log.

``/metrics`` has a latency histogram per route (the route's template, so ids do
not explode the label set), the breakers' states, and the snapshot feed. One
access line per request (AccessLines: the shape of every structured line, at
a ninth of the cost). With
``ducats api --workers N`` every process writes to PROMETHEUS_MULTIPROC_DIR
and ``/metrics`` adds them up (prometheus_client's multiprocess mode).
"""
from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import orjson
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest)
from prometheus_client import multiprocess as prom_multiprocess
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


REQUEST_SECONDS = Histogram(
    "ducats_api_request_seconds", "Time to answer one request, by route template, method and status",
    ["route", "method", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5))
BREAKER_STATE = Gauge("ducats_api_breaker_state", "Circuit breaker per service: 0 closed, 1 half-open, 2 open",
                      ["service"], multiprocess_mode="max")
BREAKER_TRIPS = Counter("ducats_api_breaker_trips_total", "Times a service's breaker opened", ["service"])
SHED_TOTAL = Counter("ducats_api_shed_total", "Requests answered 503 because this process had no capacity left "
                     "for a service that is up (a full read pool)", ["service"])
SNAPSHOT_VERSION = Gauge("ducats_api_snapshot_version", "Version of the snapshot the API serves",
                         multiprocess_mode="min")
SNAPSHOT_STALE = Gauge("ducats_api_snapshot_stale", "1 while the served snapshot could not be refreshed",
                       multiprocess_mode="max")
RATE_LIMITED = Counter("ducats_api_rate_limited_total", "Requests answered 429", ["scope"])
LIMITER_SKIPPED = Counter("ducats_api_rate_limit_skipped_total",
                          "Requests let through unchecked because Redis could not count them", ["scope"])
PG_POOL = Gauge("ducats_api_pg_pool", "The read pool, per API process: size, available, waiting (psycopg_pool stats)",
                ["stat"], multiprocess_mode="liveall")
UNEXPECTED = Counter("ducats_api_unexpected_errors_total", "Requests answered 500, by exception type", ["type"])
PUBLISHED = Counter("ducats_api_published_total", "Events published to the input topics", ["kind"])


def metrics_response() -> Response:
    """The exposition of this process, or of all workers' processes in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class AccessLines:
    """The access log's lines, rendered here and written in batches.

    Through structlog and the logging module a line cost about 90 µs of CPU (the
    processor chain, a LogRecord, the renderer, a write and flush per line; py-spy
    and a probe of the app in bench api), more than routing the request. Here one
    is a dict rendered by orjson (or a key=value line for a terminal) in the
    same shape as every other line, kept in a list and written with one call at
    most every ``every`` seconds, or at ``most`` lines."""

    def __init__(self, *, json_lines: bool, stream: Any = None, every: float = 0.1, most: int = 256) -> None:
        self.json_lines, self.every, self.most = json_lines, every, most
        self.stream = stream
        self.lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, fields: dict[str, Any]) -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
        if self.json_lines:
            line = orjson.dumps({**fields, "event": "api.request", "logger": "ducats.api.access", "level": "info",
                                 "timestamp": stamp}).decode()
        else:
            line = f"{stamp} [info     ] api.request                    " + " ".join(
                f"{k}={v}" for k, v in sorted(fields.items())) + " [ducats.api.access]"
        self.lines.append(line)
        if len(self.lines) >= self.most:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.every, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.lines:
            stream = self.stream or sys.stderr
            stream.write("\n".join(self.lines) + "\n")
            stream.flush()
            self.lines.clear()


class AccessLog:
    """Pure ASGI middleware: one structured line (AccessLines) and one histogram sample per
    request, and the lines flushed when the app shuts down.

    The route label is the matched template (``/api/ducats/{ducat_id}``), or
    ``unmatched`` for a 404 of the router."""

    def __init__(self, app: ASGIApp, *, lines: AccessLines | None = None,
                 quiet: frozenset[str] = frozenset({"/metrics", "/healthz"})) -> None:
        self.app, self.quiet = app, quiet
        self.lines = lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            try:
                await self.app(scope, receive, send)
            finally:
                if scope["type"] == "lifespan" and self.lines is not None:
                    self.lines.flush()
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_of(scope)
            REQUEST_SECONDS.labels(route, scope["method"], str(status)).observe(elapsed)
            if self.lines is not None and scope["path"] not in self.quiet:
                client = scope.get("client")
                self.lines.add({"method": scope["method"], "path": scope["path"], "route": route, "status": status,
                                "ms": round(elapsed * 1000, 3), "client": client[0] if client else None})


def _route_of(scope: Scope) -> str:
    route: Any = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"
