"""The ledger's rules, applied to one batch in memory.

The sink loads what the batch needs (current holders of the ducats it names,
which transaction and mint ids were seen before, which mint ranges are already
taken), then calls :class:`LedgerBatch` once per event, in log order, and
writes the outcome in one database transaction. Nothing here does I/O, so the
same log always gives the same decisions.

A transfer is checked in this order, and the first failing rule is its reason:

1. ``duplicate_transaction``: its transactionId was seen before, accepted or not.
   (Every id is consumed once, so a redelivered event can never change state.)
2. ``self_transfer``: ``from`` equals ``to``. Such a transfer would move nothing
   and inflate velocity, so the ledger refuses it.
3. ``duplicate_ducat``: a ducat id appears twice in ``ducatIds``.
4. ``unknown_ducat``: a ducat was never minted (or its mint is not applied yet).
5. ``not_holder``: ``from`` does not hold every listed ducat right now.

Otherwise all of its ducats move to ``to`` at once and it gets the next ledger
sequence number. A mint whose mintId was seen before is a redelivery and is
ignored; a mint whose ducats already exist is a conflict for the dead-letter topic.

Every ducat a transfer moves also evolves by the consciousness model
(ducats.domain.consciousness), in the same log order: :class:`StateBatch`,
which :meth:`StateBatch.finish` then settles (the temperatures against the
watermark, the census deltas). The ledger sink decides with ``evolve=False``
and the ducat-state sink (sinks/postgres/state.py) runs a StateBatch over the
accepted log afterwards (docs/throughput.md, step 3); with the default
``evolve=True`` a LedgerBatch does both, as one batch of the log.
"""
from __future__ import annotations

import bisect
import datetime as dt
import enum
from collections import Counter
from dataclasses import dataclass, field

from ducats.domain.consciousness import (CENSUS_DIMENSIONS, MINTED, DucatState, Memory, MemoryWrites, Move, decile_of,
                                         evolve, remember, temperature_of, transfer_impact)
from schemas.models import MAX_REJECTED_IDS as OFFENDING_IDS_SHOWN
from schemas.models import RejectReason as Reject


class MintOutcome(enum.Enum):
    APPLIED = "applied"
    REDELIVERED = "redelivered"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    seq: int
    impact: float
    from_balance: int
    to_balance: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    reason: Reject
    detail: str
    ducats: tuple[int, ...] = ()


CensusKey = tuple[str, str]  # (dimension, bucket) of the ducat_census table


@dataclass(slots=True, kw_only=True)
class StateBatch:
    """The ducats' state over one range of the accepted log, applied in seq order.

    ``states`` holds the stored consciousness of the ducats the range moves (a
    ducat missing there starts fresh); ``watermark`` is the latest accepted event
    time before the range, and after :meth:`mint` and :meth:`move` the latest so
    far. ``changes`` ends up with the evolved state of every ducat moved,
    ``memories`` with the memories they left, in log order, ``census`` with the
    deltas (after :meth:`finish`).
    """

    states: dict[int, DucatState] = field(default_factory=dict)
    watermark: dt.datetime | None = None
    treasury: frozenset[str] = frozenset({"treasury"})  # DUCATS_TREASURY: its ducats are not in circulation
    changes: dict[int, DucatState] = field(default_factory=dict)
    memories: list[Memory] = field(default_factory=list)
    census: Counter[CensusKey] = field(default_factory=Counter)

    def advance(self, at: dt.datetime) -> None:
        if self.watermark is None or at > self.watermark:
            self.watermark = at

    def mint(self, count: int, at: dt.datetime) -> None:
        """A mint of ``count`` fresh ducats: each starts in the MINTED bucket of every census dimension."""
        for key in zip(CENSUS_DIMENSIONS, MINTED, strict=True):
            self.census[key] += count
        self.advance(at)

    def move(self, *, seq: int, sender: str, receiver: str, ducats: list[int], at: dt.datetime) -> float:
        """An accepted transfer: every ducat of it evolves (in the order listed); returns its impact."""
        self.advance(at)
        move = Move(seq, sender, receiver, len(ducats), transfer_impact(len(ducats)), at, sender in self.treasury)
        changes, memories, states = self.changes, self.memories, self.states
        for d in ducats:  # the hot path: keep it to dict lookups and one evolve()
            st = changes.get(d)
            if st is None:
                st = changes[d] = states.get(d) or DucatState(id=d, holder=sender)
            memory = evolve(st, move)
            if memory is not None:
                memories.append(memory)
        return move.impact

    def finish(self) -> None:
        """After the last event: each moved ducat's temperature at the range's
        watermark, and the census deltas of every ducat the range changed."""
        census, watermark = self.census, self.watermark
        for st in self.changes.values():  # per ducat moved: keep it to comparisons
            temperature, (t0, s0, level0) = temperature_of(st.last_at, watermark), st.origin
            st.temperature, level, l0 = temperature, decile_of(st.level), decile_of(level0)
            if temperature != t0:
                census["temperature", t0] -= 1
                census["temperature", temperature] += 1
            if st.stage != s0:
                census["stage", str(s0)] -= 1
                census["stage", str(st.stage)] += 1
            if level != l0:
                census["level", l0] -= 1
                census["level", level] += 1

    def remembering(self) -> list[int]:
        """The ducats whose stored memories the range's new ones must meet (the others have none)."""
        return sorted({m.ducat_id for m in self.memories if self.changes[m.ducat_id].memory_count})

    def remember(self, stored: dict[int, list[Memory]]) -> MemoryWrites:
        """Aggregate and compress the range's memories against ``stored`` (see the consciousness model)."""
        writes = remember(stored, self.memories)
        for ducat, count in writes.counts.items():
            self.changes[ducat].memory_count = count
        return writes


@dataclass(slots=True, kw_only=True)
class LedgerBatch:
    """In-memory view of the ledger for one batch; mutate only via apply_*.

    ``holders`` maps each ducat that the batch's transfers name, and that
    exists, to its holder. ``referenced`` is the sorted list of every ducat the
    transfers name, so a mint only materialises the ducats someone uses.
    ``watermark`` is the latest accepted event time so far. With ``evolve``
    (the default) the batch also runs the consciousness model (``state``, a
    :class:`StateBatch` over ``states``): ``changes``, ``memories`` and
    ``census`` are its. Without it, those stay empty: the ducat-state sink
    evolves the ducats later, from the log.
    """

    holders: dict[int, str]
    referenced: list[int]
    seen_transactions: set[str]
    seen_mints: set[str]
    taken_mint_ids: set[str] = field(default_factory=set)  # mints whose range already has ducats
    last_seq: int = 0
    states: dict[int, DucatState] = field(default_factory=dict)
    watermark: dt.datetime | None = None
    minted_ranges: list[tuple[int, int]] = field(default_factory=list)
    balances: dict[str, int] = field(default_factory=dict)  # ducats per holder, for the holders named
    changed_balances: set[str] = field(default_factory=set)
    treasury: frozenset[str] = frozenset({"treasury"})  # DUCATS_TREASURY: its ducats are not in circulation
    evolve: bool = True
    state: StateBatch | None = None

    def __post_init__(self) -> None:
        if self.evolve and self.state is None:
            self.state = StateBatch(states=self.states, watermark=self.watermark, treasury=self.treasury)

    @property
    def changes(self) -> dict[int, DucatState]:
        return self.state.changes if self.state is not None else {}

    @property
    def memories(self) -> list[Memory]:
        return self.state.memories if self.state is not None else []

    @property
    def census(self) -> Counter[CensusKey]:
        return self.state.census if self.state is not None else Counter()

    def _credit(self, holder: str, n: int) -> int:
        self.balances[holder] = balance = self.balances.get(holder, 0) + n
        self.changed_balances.add(holder)
        return balance

    def _advance(self, at: dt.datetime) -> None:
        if self.watermark is None or at > self.watermark:
            self.watermark = at

    def apply_mint(self, *, mint_id: str, lo: int, hi: int, holder: str,
                   at: dt.datetime) -> tuple[MintOutcome, int]:
        """Mint ducats lo..hi (inclusive) to ``holder``; returns (outcome, seq or 0)."""
        if mint_id in self.seen_mints:
            return MintOutcome.REDELIVERED, 0
        if mint_id in self.taken_mint_ids or any(a <= hi and lo <= b for a, b in self.minted_ranges):
            return MintOutcome.CONFLICT, 0
        self.seen_mints.add(mint_id)
        self.minted_ranges.append((lo, hi))
        start, stop = bisect.bisect_left(self.referenced, lo), bisect.bisect_right(self.referenced, hi)
        for i in self.referenced[start:stop]:
            self.holders[i] = holder
        self._credit(holder, hi - lo + 1)
        if self.state is not None:
            self.state.mint(hi - lo + 1, at)
        self._advance(at)
        self.last_seq += 1
        return MintOutcome.APPLIED, self.last_seq

    def apply_transfer(self, *, transaction_id: str, sender: str, receiver: str,
                       ducats: list[int], at: dt.datetime) -> Accepted | Rejected:
        """Apply one transfer atomically, or say why not (see the module docstring)."""
        if transaction_id in self.seen_transactions:
            return Rejected(reason=Reject.DUPLICATE_TRANSACTION,
                            detail=f"transactionId {transaction_id} was already processed")
        self.seen_transactions.add(transaction_id)
        rejected = self._check(sender, receiver, ducats)
        if rejected is not None:
            return rejected
        self.last_seq += 1
        self._advance(at)
        n = len(ducats)
        holders = self.holders
        for d in ducats:
            holders[d] = receiver
        impact = (self.state.move(seq=self.last_seq, sender=sender, receiver=receiver, ducats=ducats, at=at)
                  if self.state is not None else transfer_impact(n))
        return Accepted(seq=self.last_seq, impact=impact,
                        from_balance=self._credit(sender, -n), to_balance=self._credit(receiver, n))

    def finish(self) -> None:
        """After the last event: settle the consciousness model's batch (StateBatch.finish), if it runs."""
        if self.state is not None:
            self.state.finish()

    def remembering(self) -> list[int]:
        return self.state.remembering() if self.state is not None else []

    def remember(self, stored: dict[int, list[Memory]]) -> MemoryWrites:
        assert self.state is not None, "remember() needs evolve=True"
        return self.state.remember(stored)

    def _check(self, sender: str, receiver: str, ducats: list[int]) -> Rejected | None:
        if sender == receiver:
            return Rejected(reason=Reject.SELF_TRANSFER, detail=f"from and to are both {sender}")
        if len(set(ducats)) != len(ducats):
            seen: set[int] = set()
            dup = [d for d in ducats if d in seen or seen.add(d)]  # type: ignore[func-returns-value]
            return _rejected(Reject.DUPLICATE_DUCAT, "ducat ids listed more than once", dup)
        holders = self.holders
        unknown = [d for d in ducats if d not in holders]
        if unknown:
            return _rejected(Reject.UNKNOWN_DUCAT, f"{len(unknown)} ducat(s) were never minted", unknown)
        foreign = [d for d in ducats if holders[d] != sender]
        if foreign:
            return _rejected(Reject.NOT_HOLDER, f"{sender} does not hold {len(foreign)} of the ducats", foreign)
        return None


def _rejected(reason: Reject, detail: str, ducats: list[int]) -> Rejected:
    return Rejected(reason=reason, detail=detail, ducats=tuple(ducats[:OFFENDING_IDS_SHOWN]))
