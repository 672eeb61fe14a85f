"""The consciousness model. Every rule and constant of it lives in this module.

Transfer impact: how much a transfer stirs the consciousness of the ducats it
moves. It grows with the number of ducats moved together, on a log scale
(moving ten thousand at once is not ten thousand times as significant as one),
and lies in [0, 1]: log(1 + n) / log(1 + 10_000), rounded to 6 digits so that
every process computes the same float.
"""
from __future__ import annotations

import math

MAX_DUCATS_PER_TRANSFER = 10_000
_IMPACT_SCALE = math.log1p(MAX_DUCATS_PER_TRANSFER)


def transfer_impact(ducat_count: int) -> float:
    """consciousnessImpact of a transfer of ``ducat_count`` ducats, in [0, 1]."""
    if ducat_count < 1:
        return 0.0
    return round(min(1.0, math.log1p(ducat_count) / _IMPACT_SCALE), 6)
