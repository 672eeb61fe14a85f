"""Where the ledger's time went: the probe's timers (and cProfile), summarised.

The raw timers nest (``sink.write_batch`` contains ``sink.decode``, ...), so
the summary adds the differences that no timer measures directly: the rules
and event building (apply_and_write minus write), the transaction's own
overhead (BEGIN, the ledger_state row lock, COMMIT), the UPDATE of
``apply_changes`` without its staging COPY, and the outbox's SELECT/DELETE.
Shares are of the timed phase's wall time.
"""
from __future__ import annotations

import pstats
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table

from bench.errors import BenchError

TOP = 25


def _derived(t: dict[str, float]) -> dict[str, float]:
    g = t.get
    staging = g("sql.copy ducat_changes", 0)
    return {
        "= sink.rules_and_events (apply_and_write - write)": g("sink.apply_and_write", 0) - g("sink.write", 0),
        # write_batch's own statements: what its timed children do not cover
        "= sink.transaction_overhead (BEGIN, lock, COMMIT)": g("sink.write_batch", 0) - g("sink.decode", 0)
        - g("sink.load", 0) - g("sink.apply_and_write", 0) - g("sql.save_position", 0) - g("sql.cool_and_count", 0),
        "= sql.apply_changes UPDATE (without its COPY)": g("sql.apply_changes", 0) - staging,
        "= outbox SELECT, DELETE, commit": g("outbox.publish_pending", 0) - g("kafka.producer_send", 0)
        - g("kafka.commit_transaction", 0),
    }


def load_profile(folder: Path, wall_s: float, *, cprofile: bool) -> dict[str, Any]:
    """The timed phase (the second of three: set-up, timed, idle tail) of
    ``folder/timings.json``, with shares of ``wall_s``."""
    phases = orjson.loads((folder / "timings.json").read_bytes())
    if len(phases) != 3:
        raise BenchError(f"{folder / 'timings.json'} has {len(phases)} phases; expected 3")
    timed: dict[str, dict[str, float]] = phases[1]
    seconds = {k: v["seconds"] for k, v in timed.items()}
    steps: list[dict[str, Any]] = [{"step": k, "calls": v["calls"], "seconds": v["seconds"]} for k, v in timed.items()]
    steps += [{"step": k, "calls": None, "seconds": round(v, 4)} for k, v in _derived(seconds).items()]
    for s in steps:
        s["share"] = round(s["seconds"] / wall_s, 4) if wall_s else 0
    out: dict[str, Any] = {"dir": str(folder), "wall_s": round(wall_s, 4),
                           "steps": sorted(steps, key=lambda s: s["step"])}
    if cprofile:
        out["cprofile"] = _cprofile_top(folder)
    return out


def _cprofile_top(folder: Path) -> dict[str, Any]:
    prof, text = folder / "ledger.prof", folder / "ledger-prof.txt"
    with text.open("w", encoding="utf-8") as stream:
        stats = pstats.Stats(str(prof), stream=stream)
        stats.sort_stats("tottime").print_stats(60)
        stats.sort_stats("cumulative").print_stats(60)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:TOP]  # type: ignore[attr-defined]
    top = [{"function": f"{Path(f).name}:{line}({name})", "ncalls": nc, "tottime": round(tt, 4),
            "cumtime": round(ct, 4)} for (f, line, name), (_cc, nc, tt, ct, _callers) in rows]
    return {"file": str(prof), "report": str(text), "top_tottime": top}


def profile_table(profile: dict[str, Any]) -> Table:
    t = Table(title=f"where the ledger's time went ({profile['wall_s']:.2f} s wall)", title_justify="left")
    for name in ("step", "calls", "seconds", "share of wall"):
        t.add_column(name, justify="left" if name == "step" else "right")
    for s in profile["steps"]:
        t.add_row(s["step"], "" if s["calls"] is None else f"{s['calls']:,}", f"{s['seconds']:.3f}",
                  f"{s['share']:.1%}")
    return t
