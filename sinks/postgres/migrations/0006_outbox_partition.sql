-- The partition an outbox record goes to, when the ledger chose it: an accepted
-- event and the batch record that carries it again (the batches topic, for the
-- worker) must land in the same partition number (docs/throughput.md). NULL: the
-- producer's partitioner decides, by key, as before.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS partition integer;
