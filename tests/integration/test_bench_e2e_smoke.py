"""`ducats bench e2e` on a tiny sweep: every figure of every rate is produced
(a rate offered twice too: its transfers are new ones, applied again), and
nothing is left behind."""
from __future__ import annotations

import os
import subprocess
import sys

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from ducats.settings import Settings

PER_RATE = {"rate", "transfers", "offered_per_s", "applied_per_s", "folded_per_s", "moves_per_s", "freshness_ms",
            "seen", "never_seen", "lag_end", "lag_growth_per_s", "lag_flat", "caught_up_after", "peak_rss_bytes",
            "raw_kafka_ms", "p99_ratio_to_raw", "sustainable"}


async def test_bench_e2e_reports_every_figure_per_rate(base_settings: Settings) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP": base_settings.kafka_bootstrap,
           "DATABASE_URL": base_settings.database_url, "REDIS_URL": base_settings.redis_url}
    proc = subprocess.run([sys.executable, "-m", "cli", "bench", "e2e", "--rates", "100,200,100", "--seconds", "3",
                           "--ducats", "20000", "--holders", "100", "--timeout", "200"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = orjson.loads(proc.stdout.strip().splitlines()[-1])

    assert result["benchmark"] == "e2e" and result["params"]["ducats"] == 20_000
    assert [r["rate"] for r in result["rates"]] == [100, 200, 100]  # a rate offered again is a new run
    for r in result["rates"]:
        assert set(r) >= PER_RATE, PER_RATE - set(r)
        assert r["transfers"] == r["rate"] * 3 and r["seen"] + r["never_seen"] == r["transfers"]
        assert r["applied_per_s"] > 0 and r["freshness_ms"]["p99"] >= r["freshness_ms"]["p50"] > 0
        assert r["raw_kafka_ms"]["p99"] > 0 and r["p99_ratio_to_raw"] > 0
        assert r["peak_rss_bytes"]["ledger"] > 0 and r["peak_rss_bytes"]["worker"] > 0
        assert r["peak_rss_bytes"]["state"] > 0  # the ducat-state sink: the ledger's child process
        assert set(r["lag_end"]) == set(r["lag_flat"]) == {"ledger", "state", "worker"}
        assert r["lag_end"]["state"] >= 0 and r["lag_growth_per_s"].keys() == r["lag_end"].keys()
    assert result["highest_sustainable_rate"] in (0, 100, 200)
    assert "highest sustainable rate" in proc.stdout
    admin = AIOKafkaAdminClient(bootstrap_servers=base_settings.kafka_bootstrap)
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    assert not [t for t in topics if t.startswith(result["topic_prefix"] + ".")]
