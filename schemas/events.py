"""Python models of the event contracts in this folder's JSON Schema files."""
from __future__ import annotations

from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True, kw_only=True)
class MintBatch:
    """Mints ``count`` ducats of one batch, sequence numbers first_seq.., to ``holder``."""

    mint_id: str
    batch: int
    first_seq: int
    count: int
    holder: str
    timestamp: str

    @classmethod
    def from_json(cls, raw: bytes) -> MintBatch:
        d = orjson.loads(raw)
        return cls(mint_id=d["mintId"], batch=d["batch"], first_seq=d["firstSeq"],
                   count=d["count"], holder=d["holder"], timestamp=d["timestamp"])

    def to_json(self) -> bytes:
        return orjson.dumps({
            "mintId": self.mint_id, "batch": self.batch, "firstSeq": self.first_seq,
            "count": self.count, "holder": self.holder, "timestamp": self.timestamp,
        })
