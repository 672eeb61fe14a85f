-- The ducat-state sink (docs/throughput.md, step 3): the ducats' state (holder
-- columns, consciousness, memories, census, cooling) is applied from the
-- accepted log after the ledger's transaction, not inside it. Its position is
-- the last seq whose effects are written, and the event-time watermark at that
-- seq (the cooling's "previous"); both change in the same transaction as the
-- effects. A database the ledger kept synchronously until now is applied up to
-- the ledger's own position.
CREATE TABLE ducat_state_position (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_seq  bigint NOT NULL,
    watermark timestamptz
);
INSERT INTO ducat_state_position (last_seq, watermark) SELECT last_seq, watermark FROM ledger_state;
-- The sink reads mints by seq range as it reads transactions (transactions_seq_idx).
-- mints.seq is UNIQUE already, so it has its index.
