"""serving/errors.py TracebackBudget: one traceback per error type per period;
the rest are counted and reported with the next one."""
from __future__ import annotations

import time

from serving.errors import TracebackBudget


def test_one_traceback_per_kind_per_period_and_the_rest_counted() -> None:
    budget = TracebackBudget(every=0.05)
    assert budget.take("PoolTimeout") == 0
    assert [budget.take("PoolTimeout") for _ in range(5)] == [None] * 5
    assert budget.take("KeyError") == 0  # another kind has its own budget
    time.sleep(0.06)
    assert budget.take("PoolTimeout") == 5  # logged again, with what was left out
    assert budget.take("PoolTimeout") is None
