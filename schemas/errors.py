"""Errors of the event contracts, in the project's one error tree.

:class:`InvalidEvent` carries the dead-letter reason, so an agent turns it into
a dead letter without looking at the message text.
"""
from __future__ import annotations

from ducats.errors import DucatsError
from schemas.models import DeadLetterReason


class SchemaError(DucatsError):
    """Bytes or values that break an event contract; retrying cannot help."""


class InvalidEvent(SchemaError):
    """An input record that its schema rejects.

    ``reason`` is the machine-readable class (the dead-letter reason) and
    ``detail`` says, for people, what exactly was wrong.
    """

    def __init__(self, *, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class MalformedDucatId(SchemaError):
    """A ducat id that is not canonical ``BATCH-<batch>-<seq>``, or an int out of range."""
