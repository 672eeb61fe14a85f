"""The benchmarks' pure reporting: ratios, the ledger's batch summary, the profile's derived steps."""
from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bench.errors import BenchError
from bench.ledger_proc import batch_summary
from bench.profile import load_profile
from bench.report import Figure, figures_json


def test_a_baseline_ratio_is_pipeline_rate_over_baseline_rate() -> None:
    figures = [Figure(key="pipeline", label="p", count=1000, unit="ducats", seconds=2.0),
               Figure(key="copy", label="c", count=1000, unit="rows", seconds=0.5, versus="pipeline")]
    out = figures_json(figures)
    assert out["pipeline"] == {"label": "p", "count": 1000, "unit": "ducats", "seconds": 2.0, "per_s": 500.0}
    assert out["copy"]["per_s"] == 2000.0
    assert out["copy"]["ratio"] == 0.25  # the pipeline runs at a quarter of the baseline's speed


def test_the_batch_summary_counts_the_ledgers_own_log_records() -> None:
    batches = [{"records": 5000, "ms": 900.0}, {"records": 5000, "ms": 700.0}, {"records": 2000, "ms": 400.0}]
    s = batch_summary(batches, seconds=4.0)
    assert (s["batches"], s["records"], s["records_per_batch"]) == (3, 12_000, 4000.0)
    assert (s["busy_s"], s["busy_share"], s["batch_ms_p50"], s["batch_ms_max"]) == (2.0, 0.5, 700.0, 900.0)
    assert batch_summary([], seconds=1.0)["batches"] == 0


def test_the_profile_reads_the_timed_phase_and_derives_the_untimed_steps(tmp_path: Path) -> None:
    folder = tmp_path
    timed = {"sink.write_batch": 8.0, "sink.decode": 1.0, "sink.load": 2.0, "sink.apply_and_write": 4.0,
             "sink.write": 3.0, "sql.save_position": 0.5, "sql.apply_changes": 2.0, "sql.copy ducat_changes": 0.5}
    phases = [{"sink.decode": {"calls": 1, "seconds": 99.0}},
              {k: {"calls": 2, "seconds": v} for k, v in timed.items()},
              {}]
    (folder / "timings.json").write_bytes(orjson.dumps(phases))
    steps = {s["step"]: s for s in load_profile(folder, 10.0, cprofile=False)["steps"]}
    assert steps["sink.decode"]["seconds"] == 1.0  # the set-up phase is left out
    assert steps["= sink.rules_and_events (apply_and_write - write)"]["seconds"] == 1.0
    assert steps["= sink.transaction_overhead (BEGIN, lock, COMMIT)"]["seconds"] == 0.5
    assert steps["= sql.apply_changes UPDATE (without its COPY)"]["share"] == 0.15

    (folder / "timings.json").write_bytes(orjson.dumps(phases[:2]))
    with pytest.raises(BenchError, match="expected 3"):
        load_profile(folder, 10.0, cprofile=False)
