"""Test layout mirrors the architecture: tests/unit needs no services,
tests/integration and tests/e2e use the real Kafka, PostgreSQL and Redis.
Service fixtures live in tests/fixtures/services.py, and only there."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.ledger", "tests.fixtures.api", "tests.fixtures.private"]

_MARK_BY_FOLDER = {"unit": "unit", "integration": "integration", "e2e": "e2e"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test gets the marker of its folder, so `-m unit` selects by layer."""
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in _MARK_BY_FOLDER:
            item.add_marker(getattr(pytest.mark, _MARK_BY_FOLDER[folder]))
