"""Python models of the event contracts in this folder's JSON Schema files.

Fields are snake_case; the wire is camelCase JSON written with orjson
(``Transfer.sender``/``receiver`` are ``from``/``to``). Each model names its
schema file in ``SCHEMA``, and tests/unit/test_schema_contracts.py keeps the
fields and the schema's properties in sync.

Building a model does not validate it, which would put a second validator on
the hot path. Untrusted bytes go through :mod:`schemas.codec` (also behind
``MintBatch.from_json`` and ``Transfer.from_json``), which checks them against
the schema files first. The output events' ``from_json`` trusts its input: the
ledger wrote it, and the tests check that every model's ``to_json`` validates.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

import orjson

Metadata = dict[str, Any]
MAX_REJECTED_IDS = 100  # TransferRejected.ducatIds maxItems


class RejectReason(StrEnum):
    """Why the ledger refused a valid transfer (TransferRejected.reason)."""

    NOT_HOLDER = "not_holder"
    UNKNOWN_DUCAT = "unknown_ducat"
    DUPLICATE_TRANSACTION = "duplicate_transaction"
    DUPLICATE_DUCAT = "duplicate_ducat"
    SELF_TRANSFER = "self_transfer"


class DeadLetterReason(StrEnum):
    """Why a record went to the dead-letter topic (DeadLetter.reason)."""

    NOT_JSON = "not_json"
    WRONG_TYPE = "wrong_type"
    SCHEMA_VIOLATION = "schema_violation"
    OVERSIZE = "oversize"
    MINT_CONFLICT = "mint_conflict"


def utc_now() -> str:
    """The current time as RFC 3339 (what every ``*At`` field carries)."""
    return datetime.now(UTC).isoformat()


def _with_metadata(wire: dict[str, Any], metadata: Metadata | None) -> dict[str, Any]:
    # Absent rather than null: the schemas type metadata as an object.
    if metadata is not None:
        wire["metadata"] = metadata
    return wire


@dataclass(frozen=True, slots=True, kw_only=True)
class MintBatch:
    """Mints ``count`` ducats of one batch, sequence numbers first_seq.., to ``holder``."""

    SCHEMA: ClassVar[str] = "mint_batch.v1"

    mint_id: str
    batch: int
    first_seq: int
    count: int
    holder: str
    timestamp: str
    metadata: Metadata | None = None

    @property
    def last_seq(self) -> int:
        return self.first_seq + self.count - 1

    @classmethod
    def from_json(cls, raw: bytes) -> MintBatch:
        """Decode and validate untrusted bytes; raises :class:`schemas.errors.InvalidEvent`."""
        from schemas.codec import decode_mint

        return decode_mint(raw)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> MintBatch:
        """Build from an already validated wire dict (int() because JSON's 5.0 is an integer)."""
        return cls(mint_id=d["mintId"], batch=int(d["batch"]), first_seq=int(d["firstSeq"]),
                   count=int(d["count"]), holder=d["holder"], timestamp=d["timestamp"],
                   metadata=d.get("metadata"))

    def to_wire(self) -> dict[str, Any]:
        return _with_metadata({
            "mintId": self.mint_id, "batch": self.batch, "firstSeq": self.first_seq,
            "count": self.count, "holder": self.holder, "timestamp": self.timestamp,
        }, self.metadata)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_wire())


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """A request to move every ducat in ``ducat_ids`` from ``sender`` to ``receiver``."""

    SCHEMA: ClassVar[str] = "transfer.v1"

    transaction_id: str
    timestamp: str
    sender: str
    receiver: str
    ducat_ids: tuple[str, ...]
    metadata: Metadata | None = None

    @classmethod
    def from_json(cls, raw: bytes) -> Transfer:
        """Decode and validate untrusted bytes; raises :class:`schemas.errors.InvalidEvent`."""
        from schemas.codec import decode_transfer

        return decode_transfer(raw)

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Transfer:
        """Build from an already validated wire dict."""
        return cls(transaction_id=d["transactionId"], timestamp=d["timestamp"], sender=d["from"],
                   receiver=d["to"], ducat_ids=tuple(d["ducatIds"]), metadata=d.get("metadata"))

    def to_wire(self) -> dict[str, Any]:
        return _with_metadata({
            "transactionId": self.transaction_id, "timestamp": self.timestamp,
            "from": self.sender, "to": self.receiver, "ducatIds": self.ducat_ids,
        }, self.metadata)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_wire())


@dataclass(frozen=True, slots=True, kw_only=True)
class MintAccepted:
    """The ledger applied a mint; ``seq`` is its ledger position."""

    SCHEMA: ClassVar[str] = "mint_accepted.v1"

    seq: int
    mint_id: str
    batch: int
    first_seq: int
    count: int
    holder: str
    timestamp: str
    applied_at: str
    holder_balance: int | None = None

    @classmethod
    def of(cls, mint: MintBatch, *, seq: int, holder_balance: int | None = None,
           applied_at: str | None = None) -> MintAccepted:
        """The accepted record for ``mint``; ``applied_at`` defaults to now."""
        return cls(seq=seq, mint_id=mint.mint_id, batch=mint.batch, first_seq=mint.first_seq,
                   count=mint.count, holder=mint.holder, timestamp=mint.timestamp,
                   applied_at=applied_at or utc_now(), holder_balance=holder_balance)

    @classmethod
    def from_json(cls, raw: bytes) -> MintAccepted:
        """Decode a record the ledger wrote (trusted: not validated)."""
        d = orjson.loads(raw)
        return cls(seq=d["seq"], mint_id=d["mintId"], batch=d["batch"], first_seq=d["firstSeq"],
                   count=d["count"], holder=d["holder"], timestamp=d["timestamp"],
                   applied_at=d["appliedAt"], holder_balance=d.get("holderBalance"))

    def to_json(self) -> bytes:
        return orjson.dumps({
            "seq": self.seq, "mintId": self.mint_id, "batch": self.batch,
            "firstSeq": self.first_seq, "count": self.count, "holder": self.holder,
            "timestamp": self.timestamp, "appliedAt": self.applied_at,
            **({} if self.holder_balance is None else {"holderBalance": self.holder_balance}),
        })


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferAccepted:
    """The ledger applied a transfer; ``seq`` is its ledger position."""

    SCHEMA: ClassVar[str] = "transfer_accepted.v1"

    seq: int
    transaction_id: str
    timestamp: str
    sender: str
    receiver: str
    ducat_ids: tuple[str, ...]
    ducat_count: int
    consciousness_impact: float
    applied_at: str
    from_balance: int | None = None
    to_balance: int | None = None
    metadata: Metadata | None = None

    @classmethod
    def of(cls, transfer: Transfer, *, seq: int, consciousness_impact: float,
           from_balance: int | None = None, to_balance: int | None = None,
           applied_at: str | None = None) -> TransferAccepted:
        """The accepted record for ``transfer``; ``applied_at`` defaults to now."""
        return cls(seq=seq, transaction_id=transfer.transaction_id, timestamp=transfer.timestamp,
                   sender=transfer.sender, receiver=transfer.receiver,
                   ducat_ids=transfer.ducat_ids, ducat_count=len(transfer.ducat_ids),
                   consciousness_impact=consciousness_impact, metadata=transfer.metadata,
                   applied_at=applied_at or utc_now(), from_balance=from_balance, to_balance=to_balance)

    @classmethod
    def from_json(cls, raw: bytes) -> TransferAccepted:
        """Decode a record the ledger wrote (trusted: not validated)."""
        d = orjson.loads(raw)
        return cls(seq=d["seq"], transaction_id=d["transactionId"], timestamp=d["timestamp"],
                   sender=d["from"], receiver=d["to"], ducat_ids=tuple(d["ducatIds"]),
                   ducat_count=d["ducatCount"], consciousness_impact=d["consciousnessImpact"],
                   metadata=d.get("metadata"), applied_at=d["appliedAt"],
                   from_balance=d.get("fromBalance"), to_balance=d.get("toBalance"))

    def to_json(self) -> bytes:
        return orjson.dumps(_with_metadata({
            "seq": self.seq, "transactionId": self.transaction_id, "timestamp": self.timestamp,
            "from": self.sender, "to": self.receiver, "ducatIds": self.ducat_ids,
            "ducatCount": self.ducat_count, "consciousnessImpact": self.consciousness_impact,
            "appliedAt": self.applied_at,
            **({} if self.from_balance is None else {"fromBalance": self.from_balance, "toBalance": self.to_balance}),
        }, self.metadata))


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferRejected:
    """The ledger refused a valid transfer and changed nothing."""

    SCHEMA: ClassVar[str] = "transfer_rejected.v1"

    transaction_id: str
    reason: RejectReason
    detail: str
    ducat_ids: tuple[str, ...]
    transfer: Transfer
    rejected_at: str

    @classmethod
    def of(cls, transfer: Transfer, *, reason: RejectReason, detail: str,
           ducat_ids: tuple[str, ...] | list[str] = (),
           rejected_at: str | None = None) -> TransferRejected:
        """The rejection of ``transfer``; keeps the first 100 offending ``ducat_ids``."""
        return cls(transaction_id=transfer.transaction_id, reason=reason, detail=detail,
                   ducat_ids=tuple(ducat_ids[:MAX_REJECTED_IDS]), transfer=transfer,
                   rejected_at=rejected_at or utc_now())

    @classmethod
    def from_json(cls, raw: bytes) -> TransferRejected:
        """Decode a record the ledger wrote (trusted: not validated)."""
        d = orjson.loads(raw)
        return cls(transaction_id=d["transactionId"], reason=RejectReason(d["reason"]),
                   detail=d["detail"], ducat_ids=tuple(d["ducatIds"]),
                   transfer=Transfer.from_wire(d["transfer"]), rejected_at=d["rejectedAt"])

    def to_json(self) -> bytes:
        return orjson.dumps({
            "transactionId": self.transaction_id, "reason": self.reason.value,
            "detail": self.detail, "ducatIds": self.ducat_ids,
            "transfer": self.transfer.to_wire(), "rejectedAt": self.rejected_at,
        })


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordSource:
    """Where a Kafka record was read: DeadLetter.source."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    """A record no agent could use, with the reason and its original bytes (base64)."""

    SCHEMA: ClassVar[str] = "dead_letter.v1"

    reason: DeadLetterReason
    detail: str
    source: RecordSource
    original: str
    received_at: str

    def original_bytes(self) -> bytes:
        return base64.b64decode(self.original)

    @classmethod
    def from_json(cls, raw: bytes) -> DeadLetter:
        """Decode a dead letter (trusted: not validated)."""
        d = orjson.loads(raw)
        src = d["source"]
        return cls(reason=DeadLetterReason(d["reason"]), detail=d["detail"],
                   source=RecordSource(topic=src["topic"], partition=src["partition"],
                                       offset=src["offset"]),
                   original=d["original"], received_at=d["receivedAt"])

    def to_json(self) -> bytes:
        src = self.source
        return orjson.dumps({
            "reason": self.reason.value, "detail": self.detail,
            "source": {"topic": src.topic, "partition": src.partition, "offset": src.offset},
            "original": self.original, "receivedAt": self.received_at,
        })


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """A state of one cascade alert (``<prefix>.alerts``, ducats/domain/cascade.py)."""

    SCHEMA: ClassVar[str] = "alert.v1"

    alert_id: str
    kind: str
    state: str
    signal: str
    started_at: str
    start_seq: int
    baseline: dict[str, float]
    peak: int
    transfers: int
    seconds: int
    detected_at: str
    ended_at: str | None = None
    end_seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"alertId": self.alert_id, "kind": self.kind, "state": self.state, "signal": self.signal,
                "startedAt": self.started_at, "startSeq": self.start_seq, "baseline": self.baseline,
                "peak": self.peak, "transfers": self.transfers, "seconds": self.seconds,
                "detectedAt": self.detected_at, "endedAt": self.ended_at, "endSeq": self.end_seq}

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes) -> Alert:
        d = orjson.loads(raw)
        return cls(alert_id=d["alertId"], kind=d["kind"], state=d["state"], signal=d["signal"],
                   started_at=d["startedAt"], start_seq=d["startSeq"], baseline=d["baseline"], peak=d["peak"],
                   transfers=d["transfers"], seconds=d["seconds"], detected_at=d["detectedAt"],
                   ended_at=d.get("endedAt"), end_seq=d.get("endSeq"))
