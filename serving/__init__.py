"""The serving layer: the HTTP API and its dashboard (``ducats api``).

It reads through reads/ (so the ledger's storage can change under it), writes
only by publishing validated events to the input topics, and never waits on a
service without a budget: every call to PostgreSQL, Redis and Kafka goes
through a timeout and a circuit breaker (serving/guard.py). README, "The HTTP
API", has the endpoints, their budgets and the design.
"""
