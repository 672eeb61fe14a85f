"""`ducats bench metrics` on a tiny log: every figure is produced, the steady
state and the start-up apart, the raw consume next to the steady state, and no
topic is left behind."""
from __future__ import annotations

import os
import subprocess
import sys

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from ducats.settings import Settings

FIGURES = {"worker", "worker_steady", "worker_startup", "raw_consume"}


async def test_bench_metrics_reports_steady_state_start_up_and_raw_consume(base_settings: Settings) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP": base_settings.kafka_bootstrap,
           "DATABASE_URL": base_settings.database_url, "REDIS_URL": base_settings.redis_url}
    proc = subprocess.run([sys.executable, "-m", "cli", "bench", "metrics", "--events", "40000", "--timeout", "150"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = orjson.loads(proc.stdout.strip().splitlines()[-1])

    assert result["benchmark"] == "metrics" and result["events"] == 40_000
    assert 40 <= result["batch_records"] <= 40_000 // 1000 * 4  # one per ledger batch and partition
    figures = result["figures"]
    assert set(figures) == FIGURES
    assert figures["worker"]["count"] == 40_000
    assert figures["worker_steady"]["count"] + figures["worker_startup"]["count"] == 40_000
    assert figures["worker_steady"]["per_s"] > 0 and figures["worker_startup"]["seconds"] > 0
    assert figures["raw_consume"]["versus"] == "worker_steady" and figures["raw_consume"]["ratio"] > 0
    admin = AIOKafkaAdminClient(bootstrap_servers=base_settings.kafka_bootstrap)
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    assert not [t for t in topics if t.startswith((result["topic_prefix"] + ".", result["app_id"] + "-"))]
