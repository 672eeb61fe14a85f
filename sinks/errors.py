"""Errors raised by the sinks."""
from __future__ import annotations

from ducats.errors import DucatsError


class SinkError(DucatsError):
    """A sink could not write its batch."""


class MigrationError(SinkError):
    """The database schema could not be brought up to date."""


class LeadershipLost(SinkError):
    """Another ledger process holds (or took over) the single-writer lock."""

    retriable = True


class LogGap(SinkError):
    """The accepted log misses a seq the ledger's position covers: the database was changed by
    hand, or restored from pieces. Permanent: applying around the gap would corrupt the state."""


class StateSinkExited(SinkError):
    """The ducat-state sink's process ended (sinks/postgres/state_process.py). Retriable when
    it exited 75 (a service outage: a new term starts a new one), or was killed by a signal."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable
