"""`ducats bench analytics` runs end to end once, small and short, and reports every
figure (the analysis's time and peak RSS, twice; the raw igraph baseline and its
ratio; p50, p99 and requests/s of each analytical endpoint and the floor), and
leaves nothing behind. Never how fast: BENCHMARKS.md has the full run's figures."""
from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from bench.analytics import ENDPOINTS
from ducats.settings import Settings
from tests.fixtures.services import assert_no_leftovers


@pytest.mark.timeout(300)
async def test_bench_analytics_reports_every_figure_and_cleans_up(base_settings: Settings) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP": base_settings.kafka_bootstrap,
           "DATABASE_URL": base_settings.database_url, "REDIS_URL": base_settings.redis_url}
    env.pop("NEO4J_URL", None)
    proc = subprocess.run([sys.executable, "-m", "cli", "bench", "analytics", "--holders", "1000", "--edges", "5000",
                           "--groups", "10", "--history-hours", "1", "--wrk-seconds", "1", "--timeout", "240"],
                          env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = orjson.loads(proc.stdout.strip().splitlines()[-1])
    assert result["benchmark"] == "analytics" and result["holders"] == 1000
    for run in ("first", "second"):
        a = result["analyze"][run]
        assert a["edges"] == 5000 and a["nodes"] > 900 and a["compute_ms"] > 0 and a["peak_rss_mb"] > 50, a
    assert result["analyze"]["second"]["run"] == result["analyze"]["first"]["run"] + 1
    assert result["raw_igraph_s"] > 0 and result["raw_ratio"] > 0
    assert set(result["endpoints"]) == set(ENDPOINTS)
    for name, v in result["endpoints"].items():
        assert v["rps"] > 0 and 0 < v["p50_ms"] <= v["p99_ms"] and v["non_2xx"] == 0, (name, v)
    assert set(result["figures"]) == {"analyze", "raw_igraph"} and result["figures"]["raw_igraph"]["ratio"] > 0
    await assert_no_leftovers(base_settings, database=result["database"], topic_prefix=result["topic_prefix"])
