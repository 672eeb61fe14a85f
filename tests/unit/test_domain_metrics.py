"""The metric fold (ducats.domain.metrics), no services.

Expected figures are written out by hand, or counted from scratch by the small
balance model below (balances per holder, then circulation and holders summed
over them), never by the module's own formulas.
"""
from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from typing import Any

import pytest

from ducats.domain.metrics import (
    KEEP,
    WINDOWS,
    PartitionMetrics,
    apply,
    build_snapshot,
    daily_rollups,
    epoch,
    fold_events,
    merge,
)

BASE = 1_728_000_000  # 2024-10-04T00:00:00Z: a whole day, so also a whole hour and minute
MIN, HOUR, DAY = 60, 3600, 86400
TREASURY = frozenset({"treasury", "reserve"})


def at(offset: int) -> str:
    return dt.datetime.fromtimestamp(BASE + offset, dt.UTC).isoformat()


class Balances:
    """An independent model: each holder's balance, and accepted events carrying
    the balances the ledger puts on them."""

    def __init__(self) -> None:
        self.of: Counter[str] = Counter()
        self.seq = 0

    def mint(self, holder: str, n: int, when: int) -> dict[str, Any]:
        self.seq += 1
        self.of[holder] += n
        return {"seq": self.seq, "mintId": f"m{self.seq}", "batch": self.seq, "firstSeq": 1, "count": n,
                "holder": holder, "timestamp": at(when), "holderBalance": self.of[holder]}

    def transfer(self, frm: str, to: str, n: int, when: int, impact: float = 0.25) -> dict[str, Any]:
        assert frm != to and 0 < n <= self.of[frm]
        self.seq += 1
        self.of[frm] -= n
        self.of[to] += n
        return {"seq": self.seq, "transactionId": f"t{self.seq}", "timestamp": at(when), "from": frm, "to": to,
                "ducatCount": n, "consciousnessImpact": impact,
                "fromBalance": self.of[frm], "toBalance": self.of[to]}

    def circulation(self) -> int:
        return sum(n for h, n in self.of.items() if h not in TREASURY)

    def holders(self) -> int:
        return sum(1 for n in self.of.values() if n > 0)


def fold(events: list[dict[str, Any]], pm: PartitionMetrics | None = None) -> PartitionMetrics:
    pm = pm or PartitionMetrics()
    for e in events:
        apply(pm, e, TREASURY)
    return pm


def snapshot(partials: dict[int, PartitionMetrics], **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"census": {}, "top": [], "active_edges": 0, "now": "2024-10-04T12:00:00+00:00"}
    return build_snapshot(partials=partials, **{**args, **kw})


# -- the fold ---------------------------------------------------------------------------------------

def test_epoch_is_whole_seconds_of_any_offset() -> None:
    assert epoch("2024-10-04T00:00:00+00:00") == BASE
    assert epoch("2024-10-04T00:00:00Z") == BASE
    assert epoch("2024-10-04T02:00:59.9+02:00") == BASE + 59


def test_a_mint_adds_supply_and_counts_in_circulation_only_outside_the_treasury() -> None:
    b = Balances()
    pm = fold([b.mint("treasury", 1000, 0), b.mint("alice", 10, 5), b.mint("alice", 5, 9)])
    assert (pm.seq, pm.events, pm.mints, pm.supply) == (3, 3, 3, 1015)
    assert pm.circulation == 15          # alice's 15; the treasury's 1000 are not circulating
    assert pm.holders == 2               # treasury and alice (alice's second mint is no new holder)
    assert (pm.transfers, pm.moves, pm.late, pm.watermark) == (0, 0, 0, BASE + 9)
    assert pm.windows == {"1m": {}, "1h": {}, "1d": {}}  # mints move nothing


def test_a_transfer_counts_moves_impact_and_circulation_by_direction() -> None:
    b = Balances()
    events = [b.mint("treasury", 100, 0),
              b.transfer("treasury", "alice", 7, 10, impact=0.5),    # leaves the treasury: +7
              b.transfer("alice", "bob", 3, 20, impact=0.125),       # outside to outside: +0
              b.transfer("bob", "reserve", 3, 30, impact=0.25),      # into the (other) treasury: -3
              b.transfer("treasury", "reserve", 10, 40, impact=0.0)]  # treasury to treasury: +0
    pm = fold(events)
    assert (pm.transfers, pm.moves, pm.impact) == (4, 23, 0.875)
    assert pm.circulation == 4 == b.circulation()
    # holders: treasury, +alice, +bob, -bob (sent all he had), +reserve
    assert pm.holders == 3 == b.holders()


def test_holders_follow_the_balances_on_each_event() -> None:
    b = Balances()
    events = [b.mint("treasury", 10, 0), b.transfer("treasury", "alice", 10, 1)]
    assert (events[1]["fromBalance"], events[1]["toBalance"]) == (0, 10)
    pm = fold(events)
    assert pm.holders == 1   # the treasury emptied itself into a new holder: +1 - 1
    pm = fold([b.transfer("alice", "bob", 4, 2)], pm)
    assert pm.holders == 2   # bob is new, alice keeps 6
    pm = fold([b.transfer("bob", "alice", 4, 3)], pm)
    assert pm.holders == 1   # bob sent everything to a holder who already had some


def test_partials_sum_to_the_figures_counted_from_the_balances() -> None:
    """A random log split across partitions by sender, as the accepted topic is keyed."""
    rng = random.Random(20261126)
    b = Balances()
    names = ["treasury", "reserve"] + [f"h{i}" for i in range(8)]
    parts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    buckets: dict[int, Counter[int]] = {w: Counter() for w in (MIN, HOUR, DAY)}
    when = 0
    for i in range(3000):
        when += rng.randint(0, 3)   # about 75 minutes in all: every window stays kept
        if i % 100 == 0:
            holder = rng.choice(names)
            parts[names.index(holder) % 3].append(b.mint(holder, rng.randint(1, 50), when))
            continue
        frm = rng.choice([h for h in names if b.of[h] > 0])
        to = rng.choice([h for h in names if h != frm])
        e = b.transfer(frm, to, rng.randint(1, b.of[frm]), when, impact=0.001)
        parts[names.index(frm) % 3].append(e)
        for w in buckets:
            buckets[w][(BASE + when) // w * w] += e["ducatCount"]
    partials = {p: fold(events) for p, events in parts.items()}
    snap = snapshot(partials)
    transfers = [e for events in parts.values() for e in events if "transactionId" in e]
    assert snap["circulation"] == b.circulation()
    assert snap["holders"] == b.holders()
    assert snap["supply"] == sum(b.of.values())
    assert (snap["transfers"], snap["mints"]) == (len(transfers), 30)
    assert snap["moves"] == sum(e["ducatCount"] for e in transfers)
    assert snap["impact"] == pytest.approx(0.001 * len(transfers), abs=1e-6)
    assert snap["position"] == {"seq": 3000, "events": 3000, "complete": True,
                                "partitions": {str(p): max(e["seq"] for e in parts[p]) for p in sorted(parts)}}
    merged = merge(partials.values())
    assert merged["windows"] == {name: {str(s): n for s, n in buckets[w].items()}
                                 for name, w in (("1m", MIN), ("1h", HOUR), ("1d", DAY))}
    last_minute = (BASE + when) // MIN * MIN
    v = snap["velocity"]["1m"]
    assert (v["moves"], v["previousMoves"]) == (buckets[MIN][last_minute], buckets[MIN][last_minute - MIN])
    assert v["velocity"] == pytest.approx(buckets[MIN][last_minute] / b.circulation(), abs=1e-6)
    assert snap["velocity"]["1d"]["moves"] == snap["moves"]   # all of it fell on one day


# -- exactly once: redeliveries ---------------------------------------------------------------------

def test_a_redelivered_event_changes_nothing() -> None:
    b = Balances()
    events = [b.mint("treasury", 100, 0), b.transfer("treasury", "alice", 5, 30),
              b.transfer("alice", "bob", 2, 90), b.transfer("bob", "carol", 1, 4000)]
    pm = fold(events)
    before = pm.to_dict()
    assert [apply(pm, e, TREASURY) for e in events] == [False] * 4
    assert [apply(pm, e, TREASURY) for e in reversed(events)] == [False] * 4
    assert pm.to_dict() == before
    assert (pm.events, pm.transfers, pm.moves, pm.windows["1m"]) == (
        4, 3, 8, {str(BASE): 5, str(BASE + 60): 2, str(BASE + 3960): 1})


def test_a_replay_from_an_earlier_offset_counts_only_the_new_events() -> None:
    b = Balances()
    events = [b.mint("treasury", 100, 0)] + [b.transfer("treasury", "alice", 1, i) for i in range(1, 11)]
    pm = fold(events[:6])
    fresh = [apply(pm, e, TREASURY) for e in events[3:]]   # a crash replay overlapping what was applied
    assert fresh == [False] * 3 + [True] * 5
    assert (pm.seq, pm.events, pm.transfers, pm.moves, pm.circulation) == (11, 11, 10, 10, 10)
    assert pm.to_dict() == fold(events).to_dict()


# -- velocity windows -------------------------------------------------------------------------------

def test_windows_are_tumbling_in_event_time() -> None:
    b = Balances()
    pm = fold([b.mint("treasury", 1000, 0),
               b.transfer("treasury", "a", 1, 0),             # minute 0, hour 0
               b.transfer("treasury", "a", 2, 59),            # minute 0 (its last second)
               b.transfer("treasury", "a", 4, 60),            # minute 1
               b.transfer("treasury", "a", 8, HOUR - 1),      # minute 59, hour 0
               b.transfer("treasury", "a", 16, HOUR),         # minute 60, hour 1
               b.transfer("treasury", "a", 32, 2 * HOUR + 5)])
    assert pm.windows["1m"] == {str(BASE): 3, str(BASE + 60): 4, str(BASE + 59 * 60): 8,
                                str(BASE + HOUR): 16, str(BASE + 2 * HOUR): 32}
    assert pm.windows["1h"] == {str(BASE): 15, str(BASE + HOUR): 16, str(BASE + 2 * HOUR): 32}
    assert pm.windows["1d"] == {str(BASE): 63}
    fold([b.transfer("treasury", "a", 64, DAY + 5)], pm)   # the next day
    assert pm.windows["1d"] == {str(BASE): 63, str(BASE + DAY): 64}
    assert (pm.windows["1m"][str(BASE + DAY)], pm.windows["1h"][str(BASE + DAY)]) == (64, 64)


def test_an_event_lands_in_the_window_of_its_own_time_not_the_watermark() -> None:
    b = Balances()
    pm = fold([b.mint("treasury", 100, 0), b.transfer("treasury", "a", 5, 600),
               b.transfer("treasury", "a", 3, 130)])   # out of order, 8 minutes behind
    assert pm.watermark == BASE + 600
    assert pm.windows["1m"] == {str(BASE + 600): 5, str(BASE + 120): 3}
    assert pm.late == 0


def test_velocity_shows_the_window_of_the_watermark_and_the_one_before() -> None:
    b = Balances()
    events = [b.mint("treasury", 100, 0), b.transfer("treasury", "alice", 40, 0),
              b.transfer("alice", "bob", 3, 3 * 60 + 10), b.transfer("bob", "alice", 2, 4 * 60 + 1),
              b.transfer("alice", "bob", 5, 4 * 60 + 59)]
    snap = snapshot({0: fold(events)})
    assert snap["circulation"] == 40
    assert snap["watermark"] == "2024-10-04T00:04:59+00:00"
    assert snap["velocity"]["1m"] == {
        "windowStart": "2024-10-04T00:04:00+00:00", "moves": 7, "velocity": 0.175,
        "previousWindowStart": "2024-10-04T00:03:00+00:00", "previousMoves": 3, "previousVelocity": 0.075}
    assert snap["velocity"]["1h"] == {
        "windowStart": "2024-10-04T00:00:00+00:00", "moves": 50, "velocity": 1.25,
        "previousWindowStart": "2024-10-03T23:00:00+00:00", "previousMoves": 0, "previousVelocity": 0.0}
    assert snap["velocity"]["1d"]["moves"] == 50 and snap["velocity"]["1d"]["velocity"] == 1.25


def test_velocity_is_rounded_to_six_digits_and_zero_without_circulation() -> None:
    b = Balances()
    pm = fold([b.mint("alice", 3, 0), b.mint("treasury", 10, 0), b.transfer("alice", "bob", 1, 5)])
    assert snapshot({0: pm})["velocity"]["1m"]["velocity"] == 0.333333   # 1 / 3
    pm = fold([b.transfer("alice", "treasury", 2, 6), b.transfer("bob", "treasury", 1, 7)], pm)
    snap = snapshot({0: pm})
    assert (snap["circulation"], snap["velocity"]["1m"]["moves"]) == (0, 4)
    assert snap["velocity"]["1m"]["velocity"] == 0.0


def test_an_empty_current_window_shows_zero_and_the_previous_one() -> None:
    b = Balances()
    pm = fold([b.mint("treasury", 100, 0), b.transfer("treasury", "a", 10, 30),
               b.mint("treasury", 1, 90)])   # a mint moves the watermark, not the windows
    v = snapshot({0: pm})["velocity"]["1m"]
    assert (v["windowStart"], v["moves"], v["previousMoves"], v["previousVelocity"]) == (
        "2024-10-04T00:01:00+00:00", 0, 10, 1.0)


def test_windows_of_partitions_sum_per_start_under_the_highest_watermark() -> None:
    b = Balances()
    p0 = fold([b.mint("treasury", 100, 0), b.transfer("treasury", "a", 10, 0), b.transfer("treasury", "a", 6, 70)])
    p1 = fold([b.mint("x", 20, 1), b.transfer("x", "y", 4, 65), b.transfer("x", "y", 2, 130)])
    snap = snapshot({0: p0, 1: p1})
    assert merge([p0, p1])["windows"]["1m"] == {str(BASE): 10, str(BASE + 60): 10, str(BASE + 120): 2}
    assert snap["watermark"] == "2024-10-04T00:02:10+00:00"   # partition 1's
    assert snap["circulation"] == 36                           # a: 16, x: 14, y: 6
    v = snap["velocity"]["1m"]
    assert (v["moves"], v["previousMoves"], v["velocity"], v["previousVelocity"]) == (2, 10, 0.055556, 0.277778)


# -- pruning and late events ------------------------------------------------------------------------

def ping_pong(b: Balances, times: list[int]) -> list[dict[str, Any]]:
    out = [b.mint("alice", 1, 0)]
    for i, t in enumerate(times):
        out.append(b.transfer("alice", "bob", 1, t) if i % 2 == 0 else b.transfer("bob", "alice", 1, t))
    return out


@pytest.mark.parametrize(("name", "width", "kept", "events"), [
    ("1m", MIN, 180, 200), ("1h", HOUR, 72, 80), ("1d", DAY, 35, 40)])
def test_old_windows_are_pruned_behind_the_watermark(name: str, width: int, kept: int, events: int) -> None:
    pm = fold(ping_pong(Balances(), [i * width + 1 for i in range(events)]))
    last = BASE + (events - 1) * width
    assert sorted(int(s) for s in pm.windows[name]) == [last - k * width for k in reversed(range(kept))]
    assert set(pm.windows[name].values()) == {1}
    assert pm.late == 0 and pm.moves == events   # the pruned windows still count in the totals


def test_every_window_inside_the_horizon_is_kept() -> None:
    """Pruning only removes what is behind the horizon, however many windows there are."""
    times = [i * MIN for i in range(0, 400, 2)] + [399 * MIN]   # every other minute, then the last one
    pm = fold(ping_pong(Balances(), times))
    horizon = BASE + 399 * MIN - 179 * MIN
    kept = {int(s) for s in pm.windows["1m"]}
    assert {BASE + t for t in times if BASE + t >= horizon} <= kept
    assert len(pm.windows["1m"]) <= 180


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("step", [MIN, HOUR, DAY])
def test_after_every_event_each_window_is_exact_and_within_its_bound(step: int, seed: int) -> None:
    """Windows are pruned only when an event adds one (ducats/domain/metrics.py): after
    every event of a stream that mostly moves one window of ``step`` ahead, sometimes
    stays, and sometimes goes back (late or not), each kept window at or after the
    horizon holds exactly the moves of the events in it that were not late, and no slot
    holds more than it keeps."""
    rnd, b = random.Random(seed), Balances()
    pm = fold([b.mint("alice", 100_000, 0)])
    t, seen = 0, []
    for i in range(400):  # more windows of ``step`` than any slot keeps
        t = max(0, t + rnd.choice([step] * 8 + [step - 1, step + 1, 0, 1, -step, -5 * step, -40 * step]))
        e = b.transfer("alice", "bob", 1 + i % 3, t)
        late_before = pm.late
        assert apply(pm, e, TREASURY)
        if pm.late == late_before:
            seen.append(e)
        for name, width in WINDOWS.items():
            horizon = pm.watermark - pm.watermark % width - (KEEP[name] - 1) * width
            want: Counter[str] = Counter()
            for ev in seen:
                start = epoch(ev["timestamp"]) - epoch(ev["timestamp"]) % width
                if start >= horizon:
                    want[str(start)] += ev["ducatCount"]
            got = {k: v for k, v in pm.windows[name].items() if int(k) >= horizon}
            assert got == dict(want), (i, name)
            assert len(pm.windows[name]) <= KEEP[name], (i, name)


@pytest.mark.parametrize("seed", range(40))
def test_fold_events_equals_apply_event_by_event(seed: int) -> None:
    """The worker's batch loop (fold_events) ends where apply, one event at a time, ends:
    mints and transfers, treasury on either side, jumps in event time both ways (late
    events included), redeliveries, new edges, and a batch cut anywhere."""
    rnd = random.Random(seed)
    t, events = BASE, list[dict[str, Any]]()
    for seq in range(1, rnd.randint(10, 1500)):
        t += rnd.choice([0, 1, 5, 30, 60, 200, 4_000, -100, -20_000, 90_000, -500_000])
        ts = dt.datetime.fromtimestamp(t, dt.UTC).isoformat()
        if events and rnd.random() < 0.05:  # a redelivery: one of the last events again
            events.append(dict(rnd.choice(events[-20:])))
        elif rnd.random() < 0.1:
            events.append({"seq": seq, "mintId": f"m{seq}", "count": rnd.randint(1, 50), "timestamp": ts,
                           "holder": rnd.choice(["a", "treasury"]), "holderBalance": rnd.choice([10, 50, 3])})
        else:
            events.append({"seq": seq, "transactionId": f"t{seq}", "from": rnd.choice(["a", "b", "treasury"]),
                           "to": rnd.choice(["a", "b", "reserve"]), "ducatCount": rnd.randint(1, 9),
                           "consciousnessImpact": rnd.random(), "timestamp": ts, "toBalance": rnd.choice([3, 5]),
                           "fromBalance": rnd.choice([0, 2])})
    new_edges = frozenset(rnd.sample(range(1, 1500), 100))
    one, many = PartitionMetrics(), PartitionMetrics()
    applied = sum(apply(one, e, TREASURY, new_edges) for e in events)
    cut, when = rnd.randint(0, len(events)), dict[int, int]()
    folded = (fold_events(many, events[:cut], TREASURY, new_edges, when)
              + fold_events(many, events[cut:], TREASURY, new_edges, when))
    assert folded == applied
    assert many.to_dict() == one.to_dict()
    assert all(when[e["seq"]] == epoch(e["timestamp"]) for e in events if e["seq"] in when)


def test_a_late_event_counts_in_the_totals_in_no_window() -> None:
    b = Balances()
    pm = fold([b.mint("treasury", 100, 0), b.transfer("treasury", "alice", 10, 40 * DAY)])
    before = {k: dict(v) for k, v in pm.windows.items()}
    assert apply(pm, b.transfer("alice", "bob", 3, 4 * DAY), TREASURY)   # 36 days behind: older than all 35 days
    assert pm.late == 1
    assert pm.windows == before
    assert (pm.transfers, pm.moves, pm.circulation, pm.holders) == (2, 13, 10, 3)
    assert pm.watermark == BASE + 40 * DAY   # a late event does not move the clock back


def test_the_horizon_is_the_oldest_kept_window_of_each_size() -> None:
    """Watermark at minute 180: the 1-minute windows kept start at minute 1."""
    b = Balances()
    pm = fold([b.mint("treasury", 100, 0), b.transfer("treasury", "a", 50, 180 * MIN)])
    fold([b.transfer("a", "b", 1, 1 * MIN),          # the oldest kept minute
          b.transfer("a", "b", 2, 1 * MIN - 1),      # one second older: in the hour, not in a minute
          b.transfer("a", "b", 4, 180 * MIN - 72 * HOUR)], pm)   # 72 h behind: only the day (not late)
    assert pm.windows["1m"] == {str(BASE + 180 * MIN): 50, str(BASE + MIN): 1}
    assert pm.windows["1h"] == {str(BASE + 3 * HOUR): 50, str(BASE): 3}
    assert pm.windows["1d"] == {str(BASE): 53, str(BASE - 3 * DAY): 4}
    assert pm.late == 0


# -- the snapshot and the daily rollups -------------------------------------------------------------

def test_the_snapshot_document() -> None:
    b = Balances()
    p0 = fold([b.mint("treasury", 100, 0), b.transfer("treasury", "alice", 8, 10, impact=0.3)])
    p2 = fold([b.transfer("alice", "bob", 3, 20, impact=0.2)])
    p2.edges = 1
    census = {"temperature": {"hot": 11, "cold": 89}, "stage": {"0": 100}, "level": {"0.0": 100}}
    snap = snapshot({2: p2, 0: p0}, census=census, top=[("BATCH-1-000001", 2)], top_seq=2, active_edges=1)
    assert snap == {
        "generatedAt": "2024-10-04T12:00:00+00:00",
        "position": {"seq": 3, "events": 3, "complete": True, "partitions": {"0": 2, "2": 3}},
        "supply": 100, "circulation": 8, "holders": 3, "mints": 1, "transfers": 2, "moves": 11, "late": 0,
        "impact": 0.5, "watermark": "2024-10-04T00:00:20+00:00", "velocity": snap["velocity"],
        "network": {"edges": 1, "activeConnections": 1},
        "topCirculating": [{"ducatId": "BATCH-1-000001", "transfers": 2}], "topCirculatingAsOfSeq": 2,
        "temperature": {"hot": 11, "cold": 89},
        "consciousness": {"stages": {"0": 100}, "levels": {"0.0": 100}},
    }
    assert snap["velocity"]["1m"]["moves"] == 11 and snap["velocity"]["1m"]["velocity"] == 1.375


def test_a_partition_behind_makes_the_snapshot_incomplete() -> None:
    b = Balances()
    events = [b.mint("treasury", 100, 0)] + [b.transfer("treasury", f"h{i}", 1, i) for i in range(1, 5)]
    p0, p1 = fold(events[:2] + events[4:]), fold(events[2:3])   # seq 4 not folded yet
    position = snapshot({0: p0, 1: p1})["position"]
    assert position == {"seq": 5, "events": 4, "complete": False, "partitions": {"0": 5, "1": 3}}
    p1 = fold(events[3:4], p1)
    assert snapshot({0: p0, 1: p1})["position"]["complete"] is True


def test_an_empty_snapshot() -> None:
    snap = snapshot({})
    assert snap["position"] == {"seq": 0, "events": 0, "complete": True, "partitions": {}}
    assert (snap["supply"], snap["circulation"], snap["watermark"]) == (0, 0, None)
    assert snap["velocity"]["1d"]["velocity"] == 0.0


def test_daily_rollups_one_record_per_day_in_date_order() -> None:
    b = Balances()
    p0 = fold([b.mint("treasury", 100, 0), b.transfer("treasury", "a", 20, 2 * DAY + 5),
               b.transfer("treasury", "a", 6, 10)])
    p1 = fold([b.transfer("a", "b", 4, DAY + HOUR), b.transfer("a", "b", 2, 2 * DAY + 7)])
    assert daily_rollups([p0, p1], circulation=40) == [
        {"date": "2024-10-04", "moves": 6, "velocity": 0.15},
        {"date": "2024-10-05", "moves": 4, "velocity": 0.1},
        {"date": "2024-10-06", "moves": 22, "velocity": 0.55},
    ]
    assert daily_rollups([p0, p1], circulation=0)[0]["velocity"] == 0.0
    assert daily_rollups([], circulation=10) == []


def test_a_record_round_trips_through_json_as_the_table_stores_it() -> None:
    b = Balances()
    pm = fold([b.mint("treasury", 100, 0), b.transfer("treasury", "a", 5, 61)])
    again = PartitionMetrics.from_json(pm.to_json())
    assert again == pm and again.windows["1m"] == {str(BASE + 60): 5}
    assert PartitionMetrics.from_dict(pm.to_dict()) == pm
    assert PartitionMetrics.from_json(None) == PartitionMetrics.from_dict({}) == PartitionMetrics()
    assert apply(again, b.transfer("a", "b", 1, 62), TREASURY) and again.moves == 6
