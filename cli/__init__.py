"""The entry points: the ``ducats`` command and what only it runs (the demo,
the upstream publishing commands). Everything else sits below this package;
nothing below imports it (import-linter contracts in pyproject.toml)."""
