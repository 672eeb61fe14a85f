"""Errors raised by the stream processors (the ledger's checkpoint steps)."""
from __future__ import annotations

from ducats.errors import DucatsError


class CheckpointError(DucatsError):
    """One step of a checkpoint failed (streams/checkpoint.py). It keeps its cause's
    ``retriable``: an outage may be waited out, a refusal may not."""

    step = "checkpoint"

    def __init__(self, cause: DucatsError) -> None:
        super().__init__(f"{self.step} failed: {cause}")
        self.cause = cause
        self.retriable = cause.retriable


class WriteFailed(CheckpointError):
    """Step 1: the batch's database transaction did not commit (or its outcome is unknown)."""

    step = "writing the batch"


class PublishFailed(CheckpointError):
    """Step 2: the outbox was not (all) published; its rows stay in the table."""

    step = "publishing the outbox"


class OffsetCommitFailed(CheckpointError):
    """Step 3: the Kafka consumer offsets were not committed (the data is safe: offsets
    stored with it are the ones the ledger seeks to)."""

    step = "committing the Kafka offsets"
