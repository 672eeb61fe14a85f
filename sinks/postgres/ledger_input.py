"""What the ledger sink reads: Kafka records, and the few fields it derives from
decoded events (ducat numbers, event times, mint ranges)."""
from __future__ import annotations

import datetime as dt
from typing import Protocol

from schemas.errors import InvalidEvent
from schemas.models import DeadLetterReason, MintBatch


class InputRecord(Protocol):
    """What the sink needs of a Kafka record (aiokafka's ConsumerRecord has it)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def parse_ducat(ducat_id: str) -> int:
    """BATCH-<batch>-<seq> -> batch * 1_000_000 + seq (the codec checked the form)."""
    return int(ducat_id[6:-7]) * 1_000_000 + int(ducat_id[-6:])


def event_time(timestamp: str) -> dt.datetime:
    """An event's RFC 3339 timestamp as an aware datetime (microseconds; the
    schema allows more digits, which are dropped). One the schema lets through
    but that is no real instant (February 30th, a leap second) is invalid: it
    would otherwise fail the whole batch in PostgreSQL, again on every retry."""
    try:
        return dt.datetime.fromisoformat(timestamp.upper())
    except ValueError as exc:
        raise InvalidEvent(reason=DeadLetterReason.SCHEMA_VIOLATION,
                           detail=f"timestamp {timestamp!r} is not a valid instant: {exc}") from None


def mint_range(m: MintBatch) -> tuple[int, int]:
    """The first and last ducat numbers a mint creates."""
    base = m.batch * 1_000_000
    return base + m.first_seq, base + m.first_seq + m.count - 1
