-- The head of each partition's chain in the batches topic (schemas/batches.py):
-- the seq the last batch record written to it ended at. Written in the batch's
-- transaction, so a restarted ledger or its standby continues the chain where the
-- committed data ends. A database migrated with events already in it starts the
-- chain at 0, which readers take as "continues" (a prev below what they have).
CREATE TABLE IF NOT EXISTS accepted_chain (
    partition integer PRIMARY KEY,
    last_seq  bigint  NOT NULL
);
