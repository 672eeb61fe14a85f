"""The API's routes, one module per area: cached metrics (Redis, in-process),
the ledger's reads (PostgreSQL), writes (Kafka) and the site (dashboard, docs,
health, /metrics)."""
