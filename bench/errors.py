"""The benchmarks' errors, in the project's one error tree."""
from __future__ import annotations

from ducats.errors import DucatsError


class BenchError(DucatsError):
    """A benchmark cannot run or did not finish (bad arguments, a timeout, a dead ledger)."""


class BenchTimeout(BenchError):
    """The benchmark ran past its --timeout; everything it created was cleaned up."""

    retriable = True
