-- ducats_batch_idx is redundant: a ducat's batch is its id divided by 1,000,000,
-- so the ducats of a batch are the primary key's range
-- id BETWEEN batch * 1000000 AND batch * 1000000 + 999999, and nothing queries
-- ducats by batch. It cost an index insert per moved ducat in the ledger's
-- UPDATE (holder is indexed, so those updates are never HOT). BENCHMARKS.md,
-- "Measured improvements" (variant D) and issue 9's ledger step.
DROP INDEX IF EXISTS ducats_batch_idx;
