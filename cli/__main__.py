"""``python -m cli ...`` is the ``ducats`` command (used for subprocesses)."""
from __future__ import annotations

from cli.main import main

main()
