"""The ledger and the worker serve Prometheus metrics and log structured lines."""
from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ducats.procs import WorkerProcess
from ducats.settings import Settings
from tests.fixtures.ledger import publish, wait_caught_up, wait_worker_ready
from tests.reference import TS


def endpoint(log: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"url=(http://127\.0\.0\.1:\d+/metrics)", log.read_text() if log.exists() else "")
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no metrics endpoint in {log}")


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  (loopback only)
        return response.read().decode()


async def test_ledger_and_worker_expose_prometheus_metrics(
        ledger_settings: Settings, process_factory: Callable[..., WorkerProcess]) -> None:
    s = ledger_settings
    ledger = process_factory("ledger", s)
    worker = process_factory("worker", s)
    await wait_worker_ready(s, worker)
    mint = b'{"mintId":"m1","batch":1,"firstSeq":1,"count":5,"holder":"treasury","timestamp":"%s"}' % TS.encode()
    await publish(s, s.topic_mints, [(b"1", mint)])
    await wait_caught_up(s)
    ledger_text = scrape(endpoint(ledger.log_path))
    assert re.search(r'ducats_ledger_records_total\{outcome="mints"\} 1\.0', ledger_text), ledger_text
    assert "ducats_ledger_last_seq 1.0" in ledger_text
    deadline = time.monotonic() + 60
    while 'ducats_metrics_events_total{fresh="yes"' not in (text := scrape(endpoint(worker.log_path))):
        assert time.monotonic() < deadline, text
        await asyncio.sleep(0.2)
    assert "ducats_snapshot_version" in text
    assert "ledger.batch" in ledger.log_path.read_text()  # structured key=value lines
