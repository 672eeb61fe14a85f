"""`ducats bench api` runs end to end once, small and short, and reports every figure.

A smoke test only: it checks that every endpoint was measured at every rate
(vegeta), with its ratio to the floor, its ceiling, wrk's maximum and a py-spy
profile, that the server settled after each (breakers closed, read pools
wholly free: at these rates nothing may be lost), and that the run left
nothing behind; never how fast anything was (BENCHMARKS.md has the figures of
the full run).
"""
from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from ducats.settings import Settings
from tests.fixtures.services import assert_no_leftovers

ENDPOINTS = {"floor /api/ping", "raw Redis GET", "raw PostgreSQL PK SELECT", "raw Kafka produce (acks=all)",
             "GET /api/metrics/current",
             "GET /api/ducats/top-circulating", "GET /api/velocity/realtime", "GET /api/ducats/{id}",
             "GET /api/ducats/{id}/history", "GET /api/transactions/recent", "GET /api/holders/{holder}",
             "GET /api/transactions/{id}", "POST /api/transactions"}


@pytest.mark.timeout(500)
async def test_bench_api_reports_every_figure_and_cleans_up(base_settings: Settings) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP": base_settings.kafka_bootstrap,
           "DATABASE_URL": base_settings.database_url, "REDIS_URL": base_settings.redis_url}
    proc = subprocess.run([sys.executable, "-m", "cli", "bench", "api", "--ducats", "2000", "--transfers", "100",
                           "--rates", "20,40", "--ceiling-rates", "60", "--seconds", "1", "--wrk-seconds", "1",
                           "--workers", "2", "--profile", "--profile-rate", "50", "--timeout", "400"],
                          env=env, capture_output=True, text=True, timeout=480)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = orjson.loads(proc.stdout.strip().splitlines()[-1])

    assert result["benchmark"] == "api" and result["ducats"] == 2000 and result["workers"] == 2
    runs = {(r["endpoint"], r["rate"]): r for r in result["runs"]}
    assert {e for e, _ in runs} == ENDPOINTS
    for endpoint in ENDPOINTS:
        for rate in (20, 40):
            r = runs[(endpoint, rate)]
            assert r["requests"] == rate and 0 < r["p50_ms"] <= r["p99_ms"], r
            assert r["errors"] >= 0 and sum(r["statuses"].values()) == rate, r
            assert r["vegeta_cpu_ms_per_request"] > 0, r
            assert r["p99_to_floor"] > 0 and r["floor_p99_ms"] == runs[("floor /api/ping", rate)]["p99_ms"]
        assert result["max_rps"][endpoint] > 0, endpoint
        # a figure, never a speed: the highest rate within budget is one of the offered rates, or none
        assert result["ceilings"][endpoint]["rate"] in (None, 20, 40, 60), result["ceilings"][endpoint]
        after = result["after"][endpoint]
        assert after["settled"] and after["breakers"].keys() == {"postgres", "redis", "kafka"}, after
        assert len(after["pools"]) == 2 and all(p["size"] >= 1 for p in after["pools"].values()), after
        profile = result["profiles"][endpoint]
        assert profile["samples"] > 0 and profile["self_by_package"] and profile["rate"] == 50, profile
    assert {"nproc", "cpu"} <= result["machine"].keys() and "git_commit" in result["code"]

    await assert_no_leftovers(base_settings, database=result["database"], topic_prefix=result["topic_prefix"])
