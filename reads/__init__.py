"""The read side: every query that the API, the CLI and the tests ask of the
pipeline's state (the snapshot, the hot cache, the census, ledger lag, live
workers). It reads Redis, PostgreSQL and Kafka; it writes nothing, and it
imports neither streams/ nor sinks/, so the writers' storage can change under
it (import-linter contracts in pyproject.toml)."""
