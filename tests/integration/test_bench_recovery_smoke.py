"""`ducats bench recovery` runs end to end once, small, and reports every figure.

A smoke test only: it checks that each scenario ran and produced its sample and
that the run left nothing behind, never how fast anything recovered (the
benchmark itself measures that; BENCHMARKS.md has the figures).
"""
from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from bench.recovery import FIGURES
from ducats.settings import Settings
from tests.fixtures.services import assert_no_leftovers


@pytest.mark.timeout(720)
async def test_bench_recovery_reports_every_figure_and_cleans_up(base_settings: Settings) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP": base_settings.kafka_bootstrap,
           "DATABASE_URL": base_settings.database_url, "REDIS_URL": base_settings.redis_url}
    proc = subprocess.run([sys.executable, "-m", "cli", "bench", "recovery", "--reps", "1", "--rate", "50",
                           "--timeout", "600"], env=env, capture_output=True, text=True, timeout=700)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = orjson.loads(proc.stdout.strip().splitlines()[-1])

    assert result["benchmark"] == "recovery" and result["params"]["reps"] == 1
    assert set(result["figures"]) == {f.key for f in FIGURES}
    for key, figure in result["figures"].items():
        assert len(figure["samples"]) == 1 and figure["median_s"] >= 0, key
    for f in FIGURES:
        if f.versus is not None:
            assert result["figures"][f.key]["versus"] == f.versus and result["figures"][f.key]["ratio"] > 0
    assert {"nproc", "cpu"} <= result["machine"].keys() and "git_commit" in result["code"]

    await assert_no_leftovers(base_settings, database=result["database"], topic_prefix=result["topic_prefix"])
