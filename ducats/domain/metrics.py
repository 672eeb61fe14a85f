"""Supply, circulation, holders and velocity, as exact per-partition partials.

Each partition of the accepted log is folded into one :class:`PartitionMetrics`
record. Every field is a sum over that partition's events, so the global
figures are the sums of the partials (:func:`merge`), whichever worker owns
which partition. Each record remembers the last ledger ``seq`` it applied: an
event at or below it is a redelivery (a crash replay, an aborted outbox
transaction seen by a read_uncommitted consumer) and is skipped, so every
accepted event counts exactly once.

Velocity windows are **tumbling windows in event time**: a transfer's moves
(its ducat count) fall in the window ``[k*W, (k+1)*W)`` that holds its own
``timestamp``, for W = 60 s, 3600 s and 86400 s. Velocity of a window is its
moves divided by the circulating supply at the time the snapshot is taken.
Each partition keeps the last ``KEEP[W]`` windows before its own watermark
(the latest event time it has seen); an event older than that horizon still
counts in the totals but in no window (``late`` counts them).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

WINDOWS: dict[str, int] = {"1m": 60, "1h": 3600, "1d": 86400}
KEEP: dict[str, int] = {"1m": 180, "1h": 72, "1d": 35}   # 3 hours, 3 days, 5 weeks


def epoch(ts: str) -> int:
    """RFC 3339 -> whole seconds since the epoch (the ledger checked the format)."""
    return int(dt.datetime.fromisoformat(ts).timestamp())


@dataclass(slots=True, kw_only=True)
class PartitionMetrics:
    seq: int = 0            # last ledger seq applied from this partition
    events: int = 0         # accepted events applied (mints + transfers)
    mints: int = 0
    supply: int = 0         # ducats minted
    circulation: int = 0    # ducats held outside the treasury set (a partial: may be negative)
    holders: int = 0        # holders with a positive balance (a partial: may be negative)
    transfers: int = 0
    moves: int = 0          # ducats moved by transfers
    impact: float = 0.0     # sum of consciousnessImpact
    late: int = 0           # transfers older than every kept window
    edges: int = 0          # distinct holder-to-holder edges
    watermark: int = 0      # latest event time seen, epoch seconds
    offset: int = -1        # Kafka offset of the last batch record folded: where a worker reads on
    windows: dict[str, dict[str, int]] = field(default_factory=lambda: {k: {} for k in WINDOWS})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> PartitionMetrics:
        # The windows are copied: ``d`` may be a table's value whose changelog record
        # is still queued, and folding into it would change that record after the fact.
        if not d:
            return cls()
        fields = dict(d)
        if "windows" in fields:
            fields["windows"] = {k: dict(v) for k, v in fields["windows"].items()}
        return cls(**fields)

    @classmethod
    def from_json(cls, raw: bytes | None) -> PartitionMetrics:
        return cls.from_dict(orjson.loads(raw) if raw else None)


def apply(pm: PartitionMetrics, event: Mapping[str, Any], treasury: frozenset[str],
          new_edge_seqs: frozenset[int] = frozenset()) -> bool:
    """Fold one accepted event (MintAccepted or TransferAccepted) into ``pm``.

    ``new_edge_seqs`` are the seqs of transfers that created an edge (see
    ducats.domain.network: an edge's ``first_seq``). Returns False, changing
    nothing, when the event was already applied."""
    return fold_events(pm, (event,), treasury, new_edge_seqs) == 1


def fold_events(pm: PartitionMetrics, events: Iterable[Mapping[str, Any]], treasury: frozenset[str],
                new_edge_seqs: frozenset[int] = frozenset(), when: dict[int, int] | None = None) -> int:
    """Fold ``events`` in order into ``pm``, skipping those at or below its seq; return how
    many were new. One loop over the batch with the counters in locals: the worker's hot
    path (per-event calls and attribute writes were a third of its CPU). ``when``, if given,
    gets each new transfer's event time (epoch seconds) by seq."""
    fresh = 0
    last, count = pm.seq, pm.events
    watermark, windows = pm.watermark, pm.windows
    slots = tuple(windows[name] for name, _, _ in _SPECS)
    horizons = _horizons(watermark)
    tick, starts, keys = None, (0,) * len(_SPECS), ("",) * len(_SPECS)
    mints, supply, transfers, moves, impact, circulation, holders, late, edges = (
        pm.mints, pm.supply, pm.transfers, pm.moves, pm.impact, pm.circulation, pm.holders, pm.late, pm.edges)
    for e in events:
        seq = e["seq"]
        if seq <= last:
            continue
        fresh += 1
        last, count = seq, count + 1
        at = epoch(e["timestamp"])
        if at > watermark:
            watermark = at
            horizons = _horizons(watermark)
        if at // _TICK != tick:  # the windows' starts (and their keys) change at most once a tick
            tick = at // _TICK
            starts = tuple(at - at % width for _, width, _ in _SPECS)
            keys = tuple(str(x) for x in starts)
        if "mintId" in e:
            n = e["count"]
            mints += 1
            supply += n
            circulation += n * (e["holder"] not in treasury)
            holders += e.get("holderBalance") == n
            continue
        if when is not None:
            when[seq] = at
        n = e["ducatCount"]
        transfers += 1
        moves += n
        impact = round(impact + e["consciousnessImpact"], 6)
        circulation += n * ((e["to"] not in treasury) - (e["from"] not in treasury))
        holders += (e.get("toBalance") == n) - (e.get("fromBalance") == 0)
        counted = False
        for i in _INDEXES:
            if starts[i] >= horizons[i]:
                slot, key = slots[i], keys[i]
                had = slot.get(key)
                if had is None:
                    slot[key] = n
                    if len(slot) > _SPECS[i][2]:
                        _prune_slot(slot, horizons[i])
                else:
                    slot[key] = had + n
                counted = True
        if not counted:
            late += 1
        edges += seq in new_edge_seqs
    pm.seq, pm.events, pm.watermark = last, count, watermark
    pm.mints, pm.supply, pm.transfers, pm.moves, pm.impact, pm.circulation, pm.holders, pm.late, pm.edges = (
        mints, supply, transfers, moves, impact, circulation, holders, late, edges)
    return fresh


# (name, width, kept) of each window, for the per-event loop.
_SPECS = tuple((name, width, KEEP[name]) for name, width in WINDOWS.items())


_INDEXES = range(len(_SPECS))
_TICK = math.gcd(*WINDOWS.values())  # every window's width is a multiple of it


def _horizons(watermark: int) -> tuple[int, ...]:
    """The start of the oldest window each slot keeps, at this watermark."""
    return tuple(watermark - watermark % width - (keep - 1) * width for _, width, keep in _SPECS)


def _prune_slot(slot: dict[str, int], horizon: int) -> None:
    """Drop the windows that start before ``horizon``.

    Called only when an event added a window and the slot holds more than it keeps.
    That is the only way a slot can come to hold more: the windows at or after the
    horizon are at most ``kept`` (an event is never after the watermark), so after every
    event each slot is within its bound again, and a slot that gained no window needs
    no look (until 2026-12 every slot was looked at after every transfer)."""
    for start in [s for s in slot if int(s) < horizon]:
        del slot[start]


SUMMED = ("events", "mints", "supply", "circulation", "holders", "transfers", "moves", "late", "edges")


def merge(partials: Iterable[PartitionMetrics]) -> dict[str, Any]:
    """The global figures: sums of the partials, windows summed per start."""
    out: dict[str, Any] = {k: 0 for k in SUMMED}
    out.update(impact=0.0, watermark=0, windows={k: {} for k in WINDOWS})
    for pm in partials:
        for k in SUMMED:
            out[k] += getattr(pm, k)
        out["impact"] = round(out["impact"] + pm.impact, 6)
        out["watermark"] = max(out["watermark"], pm.watermark)
        for name, slot in pm.windows.items():
            total = out["windows"][name]
            for start, moves in slot.items():
                total[start] = total.get(start, 0) + moves
    return out


def velocity(merged: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per window size: the current window (holding the watermark) and the
    last complete one, with moves and velocity = moves / circulation."""
    circulation, wm = merged["circulation"], merged["watermark"]
    out: dict[str, dict[str, Any]] = {}
    for name, width in WINDOWS.items():
        current = wm - wm % width
        slot = merged["windows"][name]
        cur, prev = slot.get(str(current), 0), slot.get(str(current - width), 0)
        out[name] = {
            "windowStart": _iso(current), "moves": cur, "velocity": _ratio(cur, circulation),
            "previousWindowStart": _iso(current - width), "previousMoves": prev,
            "previousVelocity": _ratio(prev, circulation),
        }
    return out


def _ratio(moves: int, circulation: int) -> float:
    return round(moves / circulation, 6) if circulation > 0 else 0.0


def _iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def build_snapshot(*, partials: Mapping[int, PartitionMetrics], census: Mapping[str, Mapping[str, int]],
                   top: Iterable[tuple[str, int]], active_edges: int, now: str,
                   top_seq: int | None = None) -> dict[str, Any]:
    """The snapshot document (README, "Metric formats"), without its version.

    ``position.seq`` is the highest ledger seq applied; ``position.complete``
    says whether every accepted event up to it is counted (seqs are gapless,
    so that is ``events == seq``). ``top`` is the hot cache's, as of ``top_seq``
    (the ducat-state sink's position when it wrote it)."""
    merged = merge(partials.values())
    seq = max((pm.seq for pm in partials.values()), default=0)
    return {
        "generatedAt": now,
        "position": {"seq": seq, "events": merged["events"], "complete": merged["events"] == seq,
                     "partitions": {str(p): pm.seq for p, pm in sorted(partials.items())}},
        **{k: merged[k] for k in ("supply", "circulation", "holders", "mints", "transfers", "moves", "late")},
        "impact": merged["impact"],
        "watermark": _iso(merged["watermark"]) if merged["watermark"] else None,
        "velocity": velocity(merged),
        "network": {"edges": merged["edges"], "activeConnections": active_edges},
        "topCirculating": [{"ducatId": d, "transfers": n} for d, n in top],
        "topCirculatingAsOfSeq": top_seq,
        "temperature": dict(census.get("temperature", {})),
        "consciousness": {"stages": dict(census.get("stage", {})), "levels": dict(census.get("level", {}))},
    }


def daily_rollups(partials: Iterable[PartitionMetrics], circulation: int) -> list[dict[str, Any]]:
    """One record per day window kept: its moves and velocity."""
    merged = merge(partials)
    return [{"date": _iso(int(start))[:10], "moves": moves, "velocity": _ratio(moves, circulation)}
            for start, moves in sorted(merged["windows"]["1d"].items(), key=lambda kv: int(kv[0]))]
