"""The records of the batches topic (``<prefix>.transactions.accepted.batches``),
the workers' input: one ledger batch's accepted events of one partition, as

    {"prev": 1041, "events": [<MintAccepted or TransferAccepted>, ...]}

``events`` are in seq order. ``prev`` is the seq of the last event the record
before it in the same partition carried (0 for the first), so the records of a
partition form a chain. A reader that has folded a partition up to seq S knows,
from the next record alone, whether it continues (``prev`` at or below S), repeats
what it has (every seq at or below S), or follows a record it never saw (``prev``
above S): a record lost on the way, by whatever cause, is a gap it can see, never a
silent skip (streams/metrics.py rereads the partition from the last record it
folded). Offsets cannot say this: a transaction's commit marker takes an offset,
and so does every record of an aborted transaction.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

RECORD_BYTES = 512 << 10  # a record's events at most; one bigger event still goes alone


class Link(Enum):
    """How a record relates to a partition folded up to some seq."""

    NEXT = "next"            # it continues the chain: fold it
    SEEN = "seen"            # every event of it is folded already (a redelivery)
    GAP = "gap"              # a record before it was never folded


@dataclass(frozen=True, slots=True)
class BatchRecord:
    prev: int
    events: list[dict[str, Any]]

    @property
    def last(self) -> int:
        return int(self.events[-1]["seq"]) if self.events else self.prev

    def link(self, folded: int) -> Link:
        """Its relation to a partition whose events up to seq ``folded`` are folded.

        A ``prev`` below ``folded`` with later events is NEXT: a log written before the
        chain existed starts it at 0, and the fold skips what it already has by seq."""
        if self.last <= folded:
            return Link.SEEN
        return Link.GAP if self.prev > folded else Link.NEXT


def decode(value: bytes) -> BatchRecord:
    raw = orjson.loads(value)
    return BatchRecord(prev=int(raw["prev"]), events=raw["events"])


def encode(events: Sequence[tuple[int, bytes]], *, prev: int, limit: int = RECORD_BYTES) -> tuple[list[bytes], int]:
    """The records that carry ``events`` ((seq, accepted event's JSON), in seq order)
    after a record that ended at seq ``prev``: at most ``limit`` bytes of events
    each (at least one event each). Returns them and the seq the last one ends at."""
    out: list[bytes] = []
    chunk: list[bytes] = []
    size, last = 0, prev
    for seq, e in events:
        if chunk and size + len(e) > limit:
            out.append(_record(prev, chunk))
            chunk, size, prev = [], 0, last
        chunk.append(e)
        size += len(e) + 1
        last = seq
    if chunk:
        out.append(_record(prev, chunk))
        prev = last
    return out, prev


def _record(prev: int, chunk: list[bytes]) -> bytes:
    return b'{"prev":%d,"events":[%b]}' % (prev, b",".join(chunk))


class Chain:
    """The head (last seq) of each partition's chain, for a writer of the topic."""

    def __init__(self, heads: dict[int, int] | None = None) -> None:
        self.heads: dict[int, int] = dict(heads or {})

    def records(self, partition: int, events: Iterable[tuple[int, bytes]]) -> list[bytes]:
        records, self.heads[partition] = encode(list(events), prev=self.heads.get(partition, 0))
        return records
