"""Command (a) of the README: `ducats demo` runs the pipeline end to end and exits 0."""
from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable

import orjson

from cli.demo import BATCHES, SIZE, demo_transfers
from ducats.settings import Settings
from tests.reference import Reference


def expected(first_batch: int) -> tuple[Reference, Counter[str]]:
    """The demo's transfers through the reference model: its decisions, and the
    transfers each ducat made. The generator is seeded, so the counts do not
    depend on the batch numbers or the clock of the run."""
    ref = Reference()
    for b in range(BATCHES):
        ref.mint(first_batch + b, 1, SIZE, "treasury")
    moves: Counter[str] = Counter()
    for raw in demo_transfers(first_batch=first_batch, run="demo", start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)):
        e = orjson.loads(raw)
        if ref.transfer(e["transactionId"], e["from"], e["to"], e["ducatIds"]) is None:
            moves.update(e["ducatIds"])
    return ref, moves


def test_demo_runs_the_pipeline_end_to_end(settings_factory: Callable[..., Settings],
                                           database_factory: Callable[[], str]) -> None:
    s = settings_factory(database_url=database_factory())
    env = {**os.environ, "DUCATS_TOPIC_PREFIX": s.topic_prefix, "DUCATS_APP_ID": s.app_id,
           "DATABASE_URL": s.database_url, "DUCATS_WORKER_WEB_PORT": str(s.worker_web_port),
           "DUCATS_LEDGER_METRICS_PORT": "0", "DUCATS_WORKER_METRICS_PORT": "0"}
    proc = subprocess.run([sys.executable, "-m", "cli", "demo"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    found = re.search(r"batches\s+(\d+)\.\.", proc.stderr)
    assert found, proc.stderr[-3000:]
    ref, moves = expected(int(found.group(1)))
    reasons = Counter(reason for _, reason in ref.rejected)
    # By the generator's rules, of i in 0..1999: every 101st reuses the id before it (19),
    # i % 97 == 0 sends to itself (21), else % 89 adds an unknown ducat (22), else % 83
    # repeats a ducat (24), else % 79 from a holder (i >= 400) adds a treasury ducat (20).
    assert reasons == {"duplicate_transaction": 19, "self_transfer": 21, "unknown_ducat": 22,
                       "duplicate_ducat": 24, "not_holder": 20}
    assert len(ref.accepted) == 2000 - 106 == 1894
    rejected = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    assert (f"ledger: {BATCHES + len(ref.accepted)} accepted (mints and transfers); rejected: {rejected}; "
            "dead letters: 1 not_json, 1 schema_violation, 1 wrong_type") in out, out
    circulation = sum(1 for h in ref.holder.values() if h != "treasury")
    holders = len(set(ref.holder.values()))
    snap = re.search(rf"snapshot v(\d+) at seq {BATCHES + len(ref.accepted)}: supply {BATCHES * SIZE}, "
                     rf"circulation {circulation}, holders {holders}, transfers {len(ref.accepted)},", out)
    assert snap and int(snap.group(1)) >= 1, out
    top = re.findall(r"(BATCH-\d+-\d+) \((\d+)\)", out.split("top circulating:")[1])
    assert [int(n) for _, n in top] == sorted(moves.values(), reverse=True)[:3], out
    assert all(moves[ducat] == int(n) for ducat, n in top), out
    # the network analysis ran on the worker's edges: the treasury and the 20 holders at least
    # (the demo may have run on this database before), one component at least
    net = re.search(r"network: (\d+) holders, (\d+) edges, (\d+) component\(s\), (\d+) communities; "
                    r"top influence: (\S+) \(", out)
    assert net and int(net.group(1)) >= 21 and int(net.group(2)) >= 20 and int(net.group(3)) >= 1, out
