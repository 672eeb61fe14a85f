"""The cascade rule (ducats.domain.cascade) on replayed event time: steady traffic
raises nothing over 10 minutes, a burst at 10x raises exactly one alert within
5 s of its start and ends it after, and the answer does not depend on how the
log is cut or on a restart from the saved state. No services."""
from __future__ import annotations

import datetime as dt
import random
from typing import Any

import orjson

from ducats.domain.cascade import LATENESS, Alert, Detector

T0 = int(dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC).timestamp())


def traffic(rng: random.Random, rates: list[tuple[int, float]], *, start_seq: int = 1) -> list[dict[str, Any]]:
    """Accepted transfers, second after second: ``rates`` = [(seconds, mean transfers/s)], Poisson,
    with event times jittered inside their second and now and then a mint."""
    out: list[dict[str, Any]] = []
    seq, second = start_seq, T0
    for seconds, rate in rates:
        for _ in range(seconds):
            n = poisson(rng, rate)
            for frac in sorted(rng.random() for _ in range(n)):
                at = dt.datetime.fromtimestamp(second + frac, dt.UTC).isoformat()
                out.append({"seq": seq, "transactionId": f"t{seq}", "timestamp": at})
                seq += 1
            if rng.random() < 0.01:
                out.append({"seq": seq, "mintId": f"m{seq}", "timestamp": dt.datetime.fromtimestamp(
                    second, dt.UTC).isoformat()})
                seq += 1
            second += 1
    return out


def poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method is slow for big means; a normal approximation is enough above 30
    if lam > 30:
        return max(0, round(rng.gauss(lam, lam ** 0.5)))
    k, p, limit = 0, 1.0, pow(2.718281828459045, -lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def run(events: list[dict[str, Any]], cuts: int = 1, seed: int = 0) -> tuple[list[dict[str, Any]], Detector]:
    """Feed ``events`` in ``cuts`` random pieces; every state change, in order."""
    rng = random.Random(seed)
    d = Detector()
    seen: list[dict[str, Any]] = []
    marks = sorted(rng.sample(range(1, len(events)), cuts - 1)) if cuts > 1 else []
    for lo, hi in zip([0, *marks], [*marks, len(events)], strict=True):
        seen += [a.to_dict() for a in d.feed(events[lo:hi])]
    return seen, d


def test_steady_traffic_raises_nothing_over_ten_minutes() -> None:
    for seed, rate in ((1, 3.0), (2, 20.0), (3, 200.0)):
        changes, d = run(traffic(random.Random(seed), [(600, rate)]))
        assert changes == [], (rate, changes[:1])
        assert d.alert is None and d.late == 0


def test_a_burst_at_ten_times_raises_one_alert_within_5_s_and_ends_it_after() -> None:
    events = traffic(random.Random(4), [(200, 20.0), (20, 200.0), (120, 20.0)])
    burst_start, burst_end = T0 + 200, T0 + 220
    d = Detector()
    raised_at: int | None = None
    states: list[Alert] = []
    for e in events:   # one by one: when, in event time, was it raised?
        for a in d.feed([e]):
            if raised_at is None:
                raised_at = int(dt.datetime.fromisoformat(e["timestamp"]).timestamp())
            states.append(Alert.from_dict(a.to_dict()))
    ids = {a.alert_id for a in states}
    assert len(ids) == 1, ids
    assert states[0].state == "open" and states[0].started_at == burst_start
    assert raised_at is not None and raised_at - burst_start <= LATENESS + 1 < 5
    last = states[-1]
    assert last.state == "ended" and burst_end <= last.ended_at <= burst_end + 2  # type: ignore[operator]
    assert last.peak > 150 and last.transfers > 20 * 150
    assert last.baseline["median"] < 30


def test_the_alerts_do_not_depend_on_the_cuts_or_a_restart() -> None:
    events = traffic(random.Random(5), [(150, 10.0), (10, 100.0), (100, 10.0), (8, 120.0), (60, 10.0)])
    whole, d_whole = run(events)
    assert [c["state"] for c in whole if c["state"] == "ended"] == ["ended", "ended"]  # two cascades
    for seed in range(3):
        cut, d_cut = run(events, cuts=50, seed=seed)
        assert final_states(cut) == final_states(whole) and d_cut.to_dict() == d_whole.to_dict()
    # a restart: the state saved as JSON half-way, the rest fed to the restored detector
    d = Detector()
    half = len(events) // 2
    first = [a.to_dict() for a in d.feed(events[:half])]
    restored = Detector.from_dict(orjson.loads(orjson.dumps(d.to_dict())))
    second = [a.to_dict() for a in restored.feed(events[:half + 10] + events[half + 10:])]   # a redelivery too
    assert final_states(first + second) == final_states(whole)


def final_states(changes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for c in changes:
        out[c["alertId"]] = c
    return out


def test_a_long_pause_starts_the_baseline_afresh_instead_of_alerting_on_the_restart() -> None:
    events = traffic(random.Random(6), [(100, 15.0), (600, 0.0), (100, 15.0)])
    changes, d = run(events)
    assert changes == [] and len(d.history) == 100 - LATENESS
