"""bench e2e's figure: a PNG of rate against freshness, drawn from a result as
run_e2e returns it (the smoke test in tests/integration runs the sweep itself)."""
from __future__ import annotations

from pathlib import Path

from bench.e2e import plot


def rate(r: int, p50: float, p99: float, ok: bool) -> dict[str, object]:
    return {"rate": r, "freshness_ms": {"p50": p50, "p99": p99}, "raw_kafka_ms": {"p50": 1.0, "p99": 4.0},
            "sustainable": ok}


def test_the_figure_is_a_png_of_every_rate(tmp_path: Path) -> None:
    result = {"rates": [rate(1000, 80.0, 300.0, True), rate(2000, 150.0, 900.0, True), rate(5000, 4000.0, 9000.0, False)],
              "highest_sustainable_rate": 2000, "params": {"ducats": 3_900_000, "ducats_per_transfer": 5},
              "machine": {"nproc": 2}, "code": {"git_commit": "abc1234def", "ledger_sources_sha256": "x"}}
    out = plot(result, tmp_path / "figs" / "e2e.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_a_sweep_with_no_sustainable_rate_still_draws(tmp_path: Path) -> None:
    result = {"rates": [rate(20_000, 0.0, 0.0, False)], "highest_sustainable_rate": 0,
              "params": {"ducats": 1000, "ducats_per_transfer": 1}, "machine": {}, "code": "x"}
    assert plot(result, tmp_path / "e2e.png").stat().st_size > 0
