"""Probe for issue 9: validate and apply transfers against an in-memory ownership
index, in log order, at 3.9M ducats. Candidates:

- dict: ``owner[ducat_int] -> holder id`` (a Python dict of ints);
- array: ``array('i')`` indexed by a dense index (``first[batch] + seq - 1``);
- numpy: an int32 array with fancy indexing per transfer (if numpy is there).

Each validates every transfer (the sender holds every ducat), applies the
accepted ones and rejects the rest, for ``--transfers`` transfers of
``--ducats-per`` ducats, and prints µs per transfer and per ducat move, and
the index's memory. Baseline in the same run: a loop that only reads the same
ducat ids (the floor of any per-ducat Python work).

    .venv/bin/python bench/probes/ownership_index.py --transfers 200000 --ducats-per 5
"""
from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc
from array import array
from collections.abc import Callable
from typing import Any

BATCH = 1_000_000


def build(n_ducats: int, per_batch: int, holders: int, seed: int) -> tuple[list[int], list[int], dict[int, int]]:
    """Ducat ints of ``n_ducats`` in batches of ``per_batch``, their first holders, and the
    dense offset of each batch."""
    rng = random.Random(seed)
    ids: list[int] = []
    owners: list[int] = []
    first: dict[int, int] = {}
    for b in range(1, n_ducats // per_batch + 1):
        first[b] = len(ids)
        h = rng.randrange(holders)
        ids.extend(b * BATCH + s for s in range(1, per_batch + 1))
        owners.extend([h] * per_batch)
    return ids, owners, first


def workload(ids: list[int], owners: list[int], transfers: int, per: int, holders: int,
             seed: int) -> list[tuple[int, int, list[int]]]:
    """Transfers in log order. A transfer moves one group of ``per`` consecutive ducats (groups
always move together, so the holder's is known); about 10 % name a sender that does not hold
them, and are rejected."""
    rng = random.Random(seed)
    model = dict(zip(ids, owners, strict=True))
    groups = len(ids) // per
    out = []
    for _ in range(transfers):
        g = rng.randrange(groups)
        ducats = ids[g * per:(g + 1) * per]
        sender = model[ducats[0]]
        if rng.random() < 0.1:
            sender = (sender + 1) % holders  # not the holder: rejected
        receiver = rng.randrange(holders)
        if all(model[d] == sender for d in ducats):
            for d in ducats:
                model[d] = receiver
        out.append((sender, receiver, ducats))
    return out


def run_dict(ids: list[int], owners: list[int], first: dict[int, int], txs: list[Any]) -> tuple[int, Any]:
    owner = dict(zip(ids, owners, strict=True))
    accepted = 0
    for sender, receiver, ducats in txs:
        if all(owner[d] == sender for d in ducats):
            for d in ducats:
                owner[d] = receiver
            accepted += 1
    return accepted, owner


def run_array(ids: list[int], owners: list[int], first: dict[int, int], txs: list[Any]) -> tuple[int, Any]:
    owner = array("i", owners)
    accepted = 0
    for sender, receiver, ducats in txs:
        dense = [first[d // BATCH] + d % BATCH - 1 for d in ducats]
        if all(owner[i] == sender for i in dense):
            for i in dense:
                owner[i] = receiver
            accepted += 1
    return accepted, owner


def run_numpy(ids: list[int], owners: list[int], first: dict[int, int], txs: list[Any]) -> tuple[int, Any]:
    import numpy as np  # optional: the probe says whether it is worth a dependency

    owner = np.array(owners, dtype=np.int32)
    accepted = 0
    for sender, receiver, ducats in txs:
        dense = np.fromiter((first[d // BATCH] + d % BATCH - 1 for d in ducats), dtype=np.int64, count=len(ducats))
        if (owner[dense] == sender).all():
            owner[dense] = receiver
            accepted += 1
    return accepted, owner


def run_floor(ids: list[int], owners: list[int], first: dict[int, int], txs: list[Any]) -> tuple[int, Any]:
    seen = 0
    for _sender, _receiver, ducats in txs:
        for _d in ducats:
            seen += 1
    return seen, None


def measure(name: str, fn: Callable[..., tuple[int, Any]], *args: Any) -> dict[str, Any]:
    tracemalloc.start()
    start = time.perf_counter()
    result, index = fn(*args)
    took = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"name": name, "seconds": took, "result": result, "peak_mib": peak / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ducats", type=int, default=3_900_000)
    ap.add_argument("--per-batch", type=int, default=10_000)
    ap.add_argument("--holders", type=int, default=100_000)
    ap.add_argument("--transfers", type=int, default=200_000)
    ap.add_argument("--ducats-per", type=int, default=5)
    a = ap.parse_args()
    ids, owners, first = build(a.ducats, a.per_batch, a.holders, seed=1)
    txs = workload(ids, owners, a.transfers, a.ducats_per, a.holders, seed=2)
    candidates: list[tuple[str, Callable[..., tuple[int, Any]]]] = [
        ("floor: read the ids only", run_floor), ("dict", run_dict), ("array('i') + dense index", run_array)]
    try:
        import numpy  # noqa: F401
        candidates.append(("numpy int32 + fancy indexing", run_numpy))
    except ImportError:
        print("numpy not installed: its candidate is skipped", file=sys.stderr)
    rows = [measure(n, f, ids, owners, first, txs) for n, f in candidates]
    floor = rows[0]["seconds"]
    print(f"{a.ducats:,} ducats, {a.transfers:,} transfers of {a.ducats_per} ducats")
    for r in rows:
        print(f"{r['name']:<32} {r['seconds'] / a.transfers * 1e6:8.2f} µs/transfer "
              f"{r['seconds'] / (a.transfers * a.ducats_per) * 1e6:7.3f} µs/move  x{r['seconds'] / floor:6.1f} floor  "
              f"peak {r['peak_mib']:8.1f} MiB  result {r['result']:,}")
    accepted = {r["result"] for r in rows[1:]}
    assert len(accepted) == 1, f"the candidates disagree on what was accepted: {accepted}"


if __name__ == "__main__":
    main()
