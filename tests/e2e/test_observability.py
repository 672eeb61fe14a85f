"""The ledger and the worker serve Prometheus metrics and log structured lines."""
from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson
import psycopg
from prometheus_client.parser import text_string_to_metric_families

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


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name`` in a Prometheus text exposition, by its sorted labels."""
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples if s.name == name}


async def scrape_until(url: str, done: Callable[[str], bool], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not done(text := scrape(url)):
        assert time.monotonic() < deadline, text
        await asyncio.sleep(0.2)
    return text


def ledger_records(text: str) -> dict[str, float]:
    return {dict(labels)["outcome"]: v for labels, v in samples(text, "ducats_ledger_records_total").items()}


def worker_events(text: str, fresh: str) -> float:
    return sum(v for labels, v in samples(text, "ducats_metrics_events_total").items() if ("fresh", fresh) in labels)


async def test_ledger_and_worker_expose_prometheus_metrics(
        ledger_settings: Settings, process_factory: Callable[..., WorkerProcess]) -> None:
    s = ledger_settings
    ledger = process_factory("ledger", s)
    worker = process_factory("worker", s)
    await wait_worker_ready(s, worker)
    await publish(s, s.topic_mints, [(b"1", orjson.dumps({"mintId": "m1", "batch": 1, "firstSeq": 1, "count": 5,
                                                           "holder": "treasury", "timestamp": TS}))])
    await wait_caught_up(s)

    def transfer(tx: str, to: str) -> bytes:
        return orjson.dumps({"transactionId": tx, "timestamp": TS, "from": "treasury", "to": to,
                             "ducatIds": ["BATCH-1-000001"]})

    await publish(s, s.topic_transactions, [
        (b"treasury", transfer("t1", "alice")),   # accepted: seq 2
        (b"treasury", transfer("t2", "bob")),     # not_holder: alice holds it now
        (b"treasury", transfer("t1", "carol")),   # duplicate_transaction
        (b"bad", b"{"),                           # not_json: a dead letter
    ])
    await wait_caught_up(s)
    with psycopg.connect(s.database_url) as conn:
        assert conn.execute("SELECT last_seq FROM ledger_state").fetchone() == (2,)

    ledger_text = await scrape_until(endpoint(ledger.log_path), lambda t: sum(ledger_records(t).values()) >= 5)
    assert ledger_records(ledger_text) == {"mints": 1, "accepted": 1, "rejected": 2, "dead_letters": 1,
                                           "replayed": 0}
    assert samples(ledger_text, "ducats_ledger_last_seq") == {(): 2}

    worker_text = await scrape_until(endpoint(worker.log_path),
                                     lambda t: samples(t, "ducats_snapshot_seq").get((), 0) >= 2)
    assert samples(worker_text, "ducats_snapshot_seq") == {(): 2}   # the ledger's last seq
    assert samples(worker_text, "ducats_snapshot_version")[()] >= 1
    assert (worker_events(worker_text, "yes"), worker_events(worker_text, "no")) == (2, 0)   # the mint, t1
    assert "ledger.batch" in ledger.log_path.read_text()  # structured key=value lines
