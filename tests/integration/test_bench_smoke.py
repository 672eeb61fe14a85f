"""`ducats bench mint` and `ducats bench transfers` run end to end on a tiny
workload and leave nothing behind; `ducats bench codec` reports its decode figures.

Smoke tests only: they check that a benchmark completes and reports, never
how fast anything is (performance is measured by the benchmarks themselves).
"""
from __future__ import annotations

import os
import subprocess
import sys

import orjson
import psycopg
from aiokafka.admin import AIOKafkaAdminClient

from ducats.settings import Settings

FIGURES = {"pipeline_ducats", "pipeline_events", "kafka_produce", "kafka_consume", "pg_copy", "pg_insert_series"}


async def test_bench_mint_prints_one_json_line_and_cleans_up(base_settings: Settings) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP": base_settings.kafka_bootstrap,
           "DATABASE_URL": base_settings.database_url}
    proc = subprocess.run([sys.executable, "-m", "cli", "bench", "mint", "--ducats", "20000",
                           "--size", "10000", "--timeout", "150"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = orjson.loads(proc.stdout.strip().splitlines()[-1])

    assert result["benchmark"] == "mint"
    assert result["params"]["ducats"] == 20_000
    assert set(result["figures"]) == FIGURES
    assert result["figures"]["pipeline_ducats"]["count"] == 20_000
    assert result["figures"]["pipeline_events"]["count"] == 2
    for key in FIGURES - {"pipeline_ducats", "pipeline_events"}:
        assert result["figures"][key]["ratio"] > 0, key
    assert {"nproc", "cpu", "ram_bytes"} <= result["machine"].keys()
    assert result["ledger"]["records"] == 2
    assert result["ledger"]["state_s"] >= result["ledger"]["log_s"] > 0

    with psycopg.connect(base_settings.database_url) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [result["database"]]).fetchone()
    assert left == (0,)
    admin = AIOKafkaAdminClient(bootstrap_servers=base_settings.kafka_bootstrap)
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    assert not [t for t in topics if t.startswith(result["topic_prefix"] + ".")]


TRANSFER_FIGURES = {"pipeline_transfers", "pipeline_moves", "ledger_log_transfers", "kafka_produce", "kafka_consume",
                    "pg_copy_transactions", "pg_update_holders"}


async def test_bench_transfers_reports_the_ledger_and_the_state_sink_next_to_raw(base_settings: Settings) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP": base_settings.kafka_bootstrap,
           "DATABASE_URL": base_settings.database_url}
    proc = subprocess.run([sys.executable, "-m", "cli", "bench", "transfers", "--transfers", "500",
                           "--holders", "10", "--per-holder", "100", "--timeout", "150"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = orjson.loads(proc.stdout.strip().splitlines()[-1])

    assert result["benchmark"] == "transfers" and result["minted"] == 1_000
    figures = result["figures"]
    assert set(figures) == TRANSFER_FIGURES
    assert figures["pipeline_transfers"]["count"] == figures["ledger_log_transfers"]["count"] == 500
    assert figures["pipeline_moves"]["count"] == 500 * 5
    for key in TRANSFER_FIGURES - {"pipeline_transfers", "pipeline_moves"}:
        assert figures[key]["ratio"] > 0, key
    ledger = result["ledger"]
    assert ledger["records"] == 500 and ledger["state_s"] >= ledger["log_s"] > 0
    # the sink's own log lines (the last may still be on its way when the ledger is stopped)
    assert {"ranges", "moves", "busy_s", "steps_s"} <= ledger["state"].keys() and ledger["state"]["moves"] <= 500 * 5
    with psycopg.connect(base_settings.database_url) as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [result["database"]]).fetchone()
    assert left == (0,)


def test_bench_codec_reports_decode_figures_next_to_plain_orjson() -> None:
    proc = subprocess.run([sys.executable, "-m", "cli", "bench", "codec", "--ids", "500", "--records", "3",
                           "--repeat", "2"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = orjson.loads(proc.stdout.strip().splitlines()[-1])

    assert result["benchmark"] == "codec"
    assert result["params"] == {"ids": 500, "records": 3, "repeat": 2}
    figures = result["figures"]
    assert set(figures) == {f"{kind}_{n}" for kind in ("decode", "orjson") for n in (1, 100, 500)}
    for n in (1, 100, 500):
        assert figures[f"decode_{n}"]["count"] == figures[f"orjson_{n}"]["count"] == 3
        assert figures[f"decode_{n}"]["per_s"] > 0
        assert figures[f"orjson_{n}"]["versus"] == f"decode_{n}" and figures[f"orjson_{n}"]["ratio"] > 0
    assert result["decode_ms_per_record"] > 0
    assert "codec decode + validate, 500 ids" in proc.stdout
