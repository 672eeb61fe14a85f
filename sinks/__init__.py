"""Sinks: workers that bulk-write the pipeline's results to PostgreSQL and Redis."""
