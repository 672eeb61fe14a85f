"""The event models, under the name the first agent imported them by.

The models live in :mod:`schemas.models`; import from there in new code.
"""
from __future__ import annotations

from schemas.models import (
    DeadLetter,
    DeadLetterReason,
    MintAccepted,
    MintBatch,
    RecordSource,
    RejectReason,
    Transfer,
    TransferAccepted,
    TransferRejected,
)

__all__ = [
    "DeadLetter", "DeadLetterReason", "MintAccepted", "MintBatch", "RecordSource",
    "RejectReason", "Transfer", "TransferAccepted", "TransferRejected",
]
