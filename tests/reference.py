"""An independent reference model of the ledger and a seeded workload generator.

Written from the rules in the README, not from ducats.domain.ledger, so that
the tests compare the pipeline against a second implementation.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

TS = "2026-11-26T12:00:00+00:00"


def ducat(batch: int, seq: int) -> str:
    return f"BATCH-{batch}-{seq:06d}"


@dataclass
class Reference:
    holder: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    accepted: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def mint(self, batch: int, first: int, count: int, to: str) -> None:
        for s in range(first, first + count):
            self.holder[ducat(batch, s)] = to

    def transfer(self, tx: str, frm: str, to: str, ids: list[str]) -> str | None:
        """Apply one transfer; return the rejection reason or None."""
        reason = self._reason(tx, frm, to, ids)
        self.seen.add(tx)
        if reason:
            self.rejected.append((tx, reason))
            return reason
        for d in ids:
            self.holder[d] = to
        self.accepted.append(tx)
        return None

    def _reason(self, tx: str, frm: str, to: str, ids: list[str]) -> str | None:
        if tx in self.seen:
            return "duplicate_transaction"
        if frm == to:
            return "self_transfer"
        if len(ids) != len(set(ids)):
            return "duplicate_ducat"
        if any(d not in self.holder for d in ids):
            return "unknown_ducat"
        if any(self.holder[d] != frm for d in ids):
            return "not_holder"
        return None


class Holdings:
    """Which ducats each holder has, with O(1) add, remove and random pick."""

    def __init__(self, names: list[str]) -> None:
        self.items: dict[str, list[str]] = {n: [] for n in names}
        self.pos: dict[str, int] = {}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def __getitem__(self, name: str) -> list[str]:
        return self.items[name]

    def add(self, name: str, d: str) -> None:
        self.pos[d] = len(self.items[name])
        self.items[name].append(d)

    def remove(self, name: str, d: str) -> None:
        lst, i = self.items[name], self.pos.pop(d)
        last = lst.pop()
        if last != d:
            lst[i] = last
            self.pos[last] = i

    def sample(self, rng: random.Random, name: str, k: int) -> list[str]:
        lst = self.items[name]
        return [lst[i] for i in rng.sample(range(len(lst)), min(k, len(lst)))]


@dataclass
class Workload:
    mints: list[bytes]
    transfers: list[tuple[bytes, bytes]]   # (key, value)
    reference: Reference
    invalid_kinds: dict[str, int]


def make_workload(*, seed: int, batches: int, batch_size: int, transfers: int,
                  holders: int = 60, invalid_share: float = 0.12,
                  clock: Callable[[int], str] | None = None) -> Workload:
    """Mints ``batches`` x ``batch_size`` ducats to the treasury, then a mix of
    valid transfers and each kind of invalid one, all decided by the reference."""
    rng = random.Random(seed)
    ref = Reference()
    names = ["treasury"] + [f"holder-{i:03d}" for i in range(holders)]
    owned = Holdings(names)
    mints = []
    for b in range(1, batches + 1):
        mints.append(orjson.dumps({"mintId": f"mint-{seed}-{b}", "batch": b, "firstSeq": 1,
                                   "count": batch_size, "holder": "treasury", "timestamp": TS}))
        ref.mint(b, 1, batch_size, "treasury")
        for s in range(1, batch_size + 1):
            owned.add("treasury", ducat(b, s))
    out: list[tuple[bytes, bytes]] = []
    kinds = {"not_holder": 0, "unknown_ducat": 0, "duplicate_transaction": 0,
             "duplicate_ducat": 0, "self_transfer": 0}
    for i in range(transfers):
        tx = f"tx-{seed}-{i}"
        frm = rng.choice([n for n in names if owned[n]])
        to = rng.choice([n for n in names if n != frm])
        ids = owned.sample(rng, frm, rng.randint(1, 12))
        if rng.random() < invalid_share:
            kind = rng.choice(sorted(kinds))
            tx, frm, to, ids = _spoil(kind, rng, tx, frm, to, ids, owned, ref)
        reason = ref.transfer(tx, frm, to, ids)
        if reason:
            kinds[reason] = kinds.get(reason, 0) + 1
        else:
            for d in ids:
                owned.remove(frm, d)
                owned.add(to, d)
        out.append((frm.encode(), orjson.dumps({"transactionId": tx, "timestamp": clock(i) if clock else TS,
                                                "from": frm,
                                                "to": to, "ducatIds": ids, "metadata": {"i": i}})))
    return Workload(mints=mints, transfers=out, reference=ref, invalid_kinds=kinds)


def _spoil(kind: str, rng: random.Random, tx: str, frm: str, to: str, ids: list[str],
           owned: Holdings, ref: Reference) -> tuple[str, str, str, list[str]]:
    if kind == "not_holder":
        other = rng.choice([n for n in owned if n != frm and owned[n]] or [frm])
        return tx, frm, to, ids + [rng.choice(owned[other])] if other != frm else ids + ["BATCH-999-000001"]
    if kind == "unknown_ducat":
        return tx, frm, to, ids + [ducat(999_999, rng.randint(1, 999_999))]
    if kind == "duplicate_transaction" and ref.seen:
        return rng.choice(sorted(ref.seen)), frm, to, ids
    if kind == "duplicate_ducat":
        return tx, frm, to, ids + [ids[0]]
    return tx, frm, frm, ids  # self_transfer
