"""End-to-end benchmarks of the ledger (``ducats bench``).

Each benchmark runs in a private database and on private topics, times the
real ``ducats ledger`` process from the first publish until it has applied
every record, and measures same-run baselines (raw COPY, raw aiokafka) on the
same data, so that the ratios, not the absolute figures, carry the result on
a noisy machine. See BENCHMARKS.md.

Modules, in the order a run uses them: ``workload`` (pure generators),
``env`` (private database and topics), ``ledger_proc`` (the ledger under
test), ``kafka_base`` and ``pg_base`` (the baselines), ``report`` (progress,
table, JSON line), ``mint`` and ``transfers`` (the two benchmarks), ``cli``;
``probe`` runs the ledger with timers for ``--profile``.
"""
