"""Consciousness cascades: bursts of accepted transfers beyond a robust baseline
(docs/network.md, "Cascades"). The one place the rule and its constants live.

The detector folds the accepted log **in seq order**, so a given log always gives
the same alerts, whatever the partitions, the batching or a restart.

- **Signal:** accepted transfers per second of event time (the transfer's own
  ``timestamp``). A second is *closed* once an event ``LATENESS`` seconds past
  it has been folded; later events for a closed second are not counted (they
  are ``late``). Seconds without a transfer count 0; ``WINDOW`` of them in a
  row (a pause) empty the baseline, which then warms up again once traffic is
  back, so a restart after a long pause is not taken for a burst.
- **Baseline:** the median and MAD (median absolute deviation) of the last
  ``WINDOW`` closed seconds outside cascades. The band's top is
  ``median + K * max(1.4826 * MAD, FLOOR_SPREAD, FLOOR_SHARE * median)``
  (1.4826 makes the MAD a standard deviation for Gaussian noise; the floors
  keep a perfectly steady or near-idle signal from alerting on a wobble).
- **Start:** a closed second above the band, with at least ``MIN_TRANSFERS``
  transfers, once the baseline holds ``WARMUP`` seconds: one alert opens. The
  baseline is frozen while it is open (the burst does not become normal).
- **End:** ``END_QUIET`` closed seconds in a row inside the band: the alert
  ends at the first of them.

With a window of 1 s and a lateness of 2 s, a burst's first second is closed,
and the alert raised, once event time is 3 s past the burst's start.
"""
from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ducats.domain.metrics import epoch

LATENESS = 2          # seconds of event time a second stays open for late events
WINDOW = 120          # closed seconds in the baseline
WARMUP = 30           # closed seconds the baseline needs before it can alert
K = 6.0               # band width, in robust standard deviations
FLOOR_SPREAD = 1.0    # transfers/s: the least spread the band assumes
FLOOR_SHARE = 0.1     # of the median: ditto, for busy steady traffic
MIN_TRANSFERS = 10    # a second with fewer transfers never opens a cascade
END_QUIET = 3         # closed seconds in the band that end a cascade
MAD_SCALE = 1.4826


def band(history: Iterable[int]) -> tuple[float, float, float]:
    """(median, MAD, top of the band) of ``history``."""
    xs = list(history)
    med = statistics.median(xs)
    mad = statistics.median(abs(x - med) for x in xs)
    return med, mad, med + K * max(MAD_SCALE * mad, FLOOR_SPREAD, FLOOR_SHARE * med)


@dataclass(slots=True)
class Alert:
    """One cascade, as the detector sees it: ``open`` until it ``ended``."""

    alert_id: str
    state: str                   # open | ended
    started_at: int              # event-time second the burst began
    start_seq: int               # the first transfer of that second folded
    baseline: dict[str, float]   # median, mad, upper when it opened
    peak: int                    # the busiest second's transfers
    transfers: int = 0           # transfers in the cascade's seconds
    seconds: int = 0             # closed seconds it has lasted
    ended_at: int | None = None
    end_seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"alertId": self.alert_id, "kind": "cascade", "state": self.state, "signal": "transfers_per_second",
                "startedAt": self.started_at, "startSeq": self.start_seq, "baseline": self.baseline,
                "peak": self.peak, "transfers": self.transfers, "seconds": self.seconds,
                "endedAt": self.ended_at, "endSeq": self.end_seq}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Alert:
        return cls(alert_id=d["alertId"], state=d["state"], started_at=d["startedAt"], start_seq=d["startSeq"],
                   baseline=dict(d["baseline"]), peak=d["peak"], transfers=d["transfers"], seconds=d["seconds"],
                   ended_at=d["endedAt"], end_seq=d["endSeq"])


@dataclass(slots=True)
class Detector:
    seq: int = 0                                          # the last seq folded
    closed: int | None = None                             # seconds up to here are closed
    open_seconds: dict[int, int] = field(default_factory=dict)   # second -> transfers, not closed yet
    first_seq: dict[int, int] = field(default_factory=dict)      # second -> its first transfer's seq
    history: deque[int] = field(default_factory=lambda: deque(maxlen=WINDOW))
    alert: Alert | None = None                            # the open cascade
    quiet: int = 0                                        # closed seconds in the band since it peaked
    late: int = 0
    idle: int = 0                                         # closed seconds in a row without a transfer

    def feed(self, events: Iterable[Mapping[str, Any]]) -> list[Alert]:
        """Fold accepted events in seq order (those at or below ``seq`` are skipped);
        returns each alert that opened, grew or ended, as it is now."""
        changed: dict[str, Alert] = {}
        for e in events:
            seq = int(e["seq"])
            if seq <= self.seq:
                continue
            self.seq = seq
            t = epoch(e["timestamp"])
            if self.closed is None:
                self.closed = t - 1
            if t <= self.closed:
                self.late += 1
            elif "transactionId" in e:
                self.open_seconds[t] = self.open_seconds.get(t, 0) + 1
                self.first_seq.setdefault(t, seq)
            horizon = t - LATENESS
            while self.closed < horizon:
                nxt = self.closed + 1
                if self.alert is None:
                    busy = min(self.open_seconds, default=horizon + 1)  # the next second with transfers
                    silent = min(busy, horizon + 1) - nxt
                    if silent > WINDOW:  # a long pause, skipped at once (the baseline starts afresh)
                        self.history.clear()
                        self.idle = WINDOW
                        self.closed = nxt + silent - 1
                        continue
                self._close(nxt, changed)
        return list(changed.values())

    def _close(self, second: int, changed: dict[str, Alert]) -> None:
        x = self.open_seconds.pop(second, 0)
        first = self.first_seq.pop(second, self.seq)
        self.closed = second
        if self.alert is None:
            if len(self.history) >= WARMUP:
                med, mad, upper = band(self.history)
                if x > upper and x >= MIN_TRANSFERS:
                    self.alert = Alert(alert_id=f"cascade-{first}", state="open", started_at=second, start_seq=first,
                                       baseline={"median": med, "mad": mad, "upper": round(upper, 3)}, peak=x,
                                       transfers=x, seconds=1)
                    self.quiet = 0
                    changed[self.alert.alert_id] = self.alert
                    return
            self.idle = self.idle + 1 if x == 0 else 0
            if self.idle >= WINDOW:  # a pause as long as the window: no baseline until traffic is back
                self.history.clear()
                return
            self.history.append(x)
            return
        a = self.alert
        a.seconds += 1
        a.transfers += x
        a.peak = max(a.peak, x)
        if x > a.baseline["upper"]:
            self.quiet = 0
        else:
            self.quiet += 1
            if self.quiet >= END_QUIET:
                a.state, a.ended_at, a.end_seq = "ended", second - END_QUIET + 1, self.seq
                self.alert = None
        changed[a.alert_id] = a

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "closed": self.closed, "open": {str(k): v for k, v in self.open_seconds.items()},
                "firstSeq": {str(k): v for k, v in self.first_seq.items()}, "history": list(self.history),
                "alert": None if self.alert is None else self.alert.to_dict(), "quiet": self.quiet, "late": self.late, "idle": self.idle}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Detector:
        if not d:
            return cls()
        return cls(seq=d["seq"], closed=d["closed"], open_seconds={int(k): v for k, v in d["open"].items()},
                   first_seq={int(k): v for k, v in d["firstSeq"].items()},
                   history=deque(d["history"], maxlen=WINDOW),
                   alert=None if d["alert"] is None else Alert.from_dict(d["alert"]), quiet=d["quiet"],
                   late=d["late"], idle=d["idle"])
