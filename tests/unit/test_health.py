"""ducats.health: readiness and riding out outages, without services."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from ducats import health
from ducats.errors import ServiceRefused, ServiceUnavailable
from ducats.health import Readiness, read_statuses


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "BACKOFF_FIRST", 0.001)


async def test_ride_out_waits_out_retriable_errors_and_reports_it(tmp_path: Path) -> None:
    calls: list[str] = []
    seen: list[dict[str, object]] = []
    r = Readiness(component="ledger", status_dir=tmp_path)

    async def work() -> str:
        calls.append("try")
        if len(calls) < 3:
            raise ServiceUnavailable("PostgreSQL at x is not answering")
        seen.extend(read_statuses(tmp_path))  # still "waiting" while the last attempt runs
        return "done"

    assert await r.ride_out(lambda: work()) == "done"  # a lambda returning a coroutine works too
    assert calls == ["try"] * 3
    assert seen == [{"component": "ledger", "pid": os.getpid(), "ready": False,
                     "waitingFor": "PostgreSQL at x is not answering", "since": seen[0]["since"]}]
    assert [(s["ready"], s["waitingFor"]) for s in read_statuses(tmp_path)] == [(True, None)]
    assert health.READY.labels("ledger")._value.get() == 1
    r.close()
    assert read_statuses(tmp_path) == []


async def test_ride_out_gives_up_at_once_on_a_permanent_error(tmp_path: Path) -> None:
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1
        raise ServiceRefused("wrong password")

    with pytest.raises(ServiceRefused):
        await Readiness(component="worker", status_dir=tmp_path).ride_out(work)
    assert calls == 1


def test_status_files_of_dead_processes_are_dropped(tmp_path: Path) -> None:
    (tmp_path / "worker-999999999.json").write_text('{"component": "worker", "pid": 999999999, "ready": true}')
    (tmp_path / "broken.json").write_text("{")
    assert read_statuses(tmp_path) == []
    assert list(tmp_path.iterdir()) == []
