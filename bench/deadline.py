"""One time budget for a whole benchmark run (``--timeout``)."""
from __future__ import annotations

import time

from bench.errors import BenchTimeout


class Deadline:
    def __init__(self, *, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"the timeout must be positive, got {seconds}")
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def check(self, doing: str) -> None:
        """Raise :class:`BenchTimeout` naming what was going on, once the budget is spent."""
        if time.monotonic() >= self.at:
            raise BenchTimeout(f"benchmark timed out after {self.seconds:.0f} s while {doing}; "
                               "fix: a larger --timeout or a smaller workload")
