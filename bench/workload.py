"""Deterministic workloads for the benchmarks. Pure: no I/O, no clock.

The transfer workload is a *valid chain*: the generator keeps every holder's
ducats, so each transfer it emits names ducats its sender holds at that point
of the log, and the ledger accepts all of them. The same seed gives the same
workload, byte for byte.
"""
from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ducats.domain.consciousness import transfer_impact
from schemas.ducat_id import SEQ_SPAN, ducat_str
from schemas.models import MintBatch, Transfer

MAX_MINT = 10_000          # ducats per mint event (the schema's limit)
MAX_PER_HOLDER = 999_999   # one batch per holder, and a batch has six digits of seq
DucatRow = tuple[int, int, str, str, str]                 # id, batch, holder, mint_id, minted_at
ChangeRow = tuple[int, str, int, int, str]                # id, holder, moves, last_seq, last_at


@dataclass(frozen=True, slots=True, kw_only=True)
class Move:
    """One planned transfer: ``ducats`` (as integers) go from ``sender`` to ``receiver``."""

    transaction_id: str
    timestamp: str
    sender: str
    receiver: str
    ducats: tuple[int, ...]

    def to_transfer(self) -> Transfer:
        return Transfer(transaction_id=self.transaction_id, timestamp=self.timestamp, sender=self.sender,
                        receiver=self.receiver, ducat_ids=tuple(ducat_str(d) for d in self.ducats))


def holder_names(n: int) -> list[str]:
    return [f"holder-{i:05d}" for i in range(n)]


def mint_plan(*, holders: Sequence[str], per_holder: int, timestamp: str, first_batch: int = 1) -> list[MintBatch]:
    """Each holder gets ``per_holder`` ducats of its own batch (``first_batch`` + its index),
    in mint events of at most 10,000 ducats with ids ``mint-<batch>-<first seq>``."""
    if not 1 <= per_holder <= MAX_PER_HOLDER:
        raise ValueError(f"per_holder must be 1..{MAX_PER_HOLDER}, got {per_holder}")
    out = []
    for i, holder in enumerate(holders):
        batch = first_batch + i
        for first in range(1, per_holder + 1, MAX_MINT):
            out.append(MintBatch(mint_id=f"mint-{batch}-{first}", batch=batch, first_seq=first,
                                 count=min(MAX_MINT, per_holder - first + 1), holder=holder, timestamp=timestamp))
    return out


def mint_range(m: MintBatch) -> range:
    """The ducat numbers a mint creates."""
    base = m.batch * SEQ_SPAN
    return range(base + m.first_seq, base + m.first_seq + m.count)


def ducat_rows(mints: Sequence[MintBatch]) -> Iterator[DucatRow]:
    """The rows of the ``ducats`` table (id, batch, holder, mint_id, minted_at) the mints create."""
    for m in mints:
        for d in mint_range(m):
            yield d, m.batch, m.holder, m.mint_id, m.timestamp


def holdings_of(mints: Sequence[MintBatch]) -> dict[str, list[int]]:
    held: dict[str, list[int]] = {}
    for m in mints:
        held.setdefault(m.holder, []).extend(mint_range(m))
    return held


def timestamps(start: dt.datetime, n: int, step: dt.timedelta = dt.timedelta(milliseconds=1)) -> list[str]:
    """``n`` increasing RFC 3339 stamps from ``start`` (which must carry a time zone)."""
    if start.tzinfo is None:
        raise ValueError("start needs a time zone")
    return [(start + i * step).isoformat() for i in range(n)]


class TransferChain:
    """Emits transfers that are all valid, in order, against the holdings it was given.

    Each transfer moves ``ducats_per_transfer`` distinct ducats, picked at random
    from a random sender that holds at least that many, to a random other holder.
    """

    def __init__(self, *, holdings: dict[str, list[int]], ducats_per_transfer: int, seed: int) -> None:
        k = ducats_per_transfer
        if not 1 <= k <= MAX_MINT:
            raise ValueError(f"ducats_per_transfer must be 1..{MAX_MINT}, got {k}")
        if len(holdings) < 2:
            raise ValueError("a transfer needs at least two holders")
        total = sum(len(v) for v in holdings.values())
        if total < len(holdings) * (k - 1) + 1:  # else some holder always has k (pigeonhole)
            raise ValueError(f"{total} ducats over {len(holdings)} holders cannot guarantee {k} to one sender")
        self.k = k
        self.names = sorted(holdings)
        self.index = {h: i for i, h in enumerate(self.names)}
        self.held = {h: list(holdings[h]) for h in self.names}
        self.rng = random.Random(seed)

    def next(self, *, transaction_id: str, timestamp: str) -> Move:
        sender = self._sender()
        receiver = self._receiver(sender)
        src, dst = self.held[sender], self.held[receiver]
        picked = []
        for i in sorted(self.rng.sample(range(len(src)), self.k), reverse=True):
            picked.append(src[i])
            src[i] = src[-1]  # swap-remove: O(1), and descending indices stay valid
            src.pop()
        dst.extend(picked)
        return Move(transaction_id=transaction_id, timestamp=timestamp, sender=sender,
                    receiver=receiver, ducats=tuple(picked))

    def _sender(self) -> str:
        for _ in range(64):  # almost always the first try: holders start with many ducats
            name = self.rng.choice(self.names)
            if len(self.held[name]) >= self.k:
                return name
        return self.rng.choice([n for n in self.names if len(self.held[n]) >= self.k])

    def _receiver(self, sender: str) -> str:
        # Uniform over the others: draw from n - 1 slots and skip the sender's.
        i = self.rng.randrange(len(self.names) - 1)
        return self.names[i + 1 if i >= self.index[sender] else i]


def transfer_moves(chain: TransferChain, stamps: Sequence[str], *, prefix: str = "tx") -> list[Move]:
    """``len(stamps)`` transfers from ``chain``, ids ``<prefix>-<n, 8 digits>``."""
    return [chain.next(transaction_id=f"{prefix}-{i:08d}", timestamp=ts) for i, ts in enumerate(stamps)]


def transaction_rows(moves: Sequence[Move], *, first_seq: int, applied_at: str) -> Iterator[tuple[object, ...]]:
    """The ``transactions`` rows the ledger writes for ``moves`` (seq from ``first_seq``)."""
    for i, m in enumerate(moves):
        yield (first_seq + i, m.transaction_id, m.timestamp, m.sender, m.receiver, list(m.ducats),
               len(m.ducats), transfer_impact(len(m.ducats)), "{}", applied_at)


def holder_changes(moves: Sequence[Move], *, first_seq: int, chunk: int) -> list[list[ChangeRow]]:
    """The net holder changes per ``chunk`` transfers, as the ledger writes them for
    batches of that size: one row per ducat moved in the chunk, its last holder,
    how often it moved, and the seq and time of its last move."""
    out = []
    for lo in range(0, len(moves), chunk):
        net: dict[int, ChangeRow] = {}
        for seq, m in enumerate(moves[lo:lo + chunk], start=first_seq + lo):
            for d in m.ducats:
                prev = net.get(d)
                net[d] = (d, m.receiver, 1 if prev is None else prev[2] + 1, seq, m.timestamp)
        out.append(list(net.values()))
    return out
