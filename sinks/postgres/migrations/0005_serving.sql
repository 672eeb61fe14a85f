-- What the HTTP API reads (README, "The HTTP API"): every ducat's ownership
-- provenance, and the outcome of every transaction and mint by its id.

-- Provenance: one row per ducat per accepted transfer, written by the ledger
-- in the same transaction as the transfer. A page of a ducat's history is one
-- range scan of the primary key in one hash partition, whatever the size of
-- transactions (whose ducat_ids array cannot be indexed for "ducat X, in seq
-- order" without a scan of every month; BENCHMARKS.md, "The history index").
-- The mint is the first entry, from ducats.mint_id and mints.
CREATE TABLE ducat_moves (
    ducat_id       bigint NOT NULL,
    seq            bigint NOT NULL,
    ts             timestamptz NOT NULL,
    sender         text NOT NULL,
    receiver       text NOT NULL,
    transaction_id text NOT NULL,
    PRIMARY KEY (ducat_id, seq)
) PARTITION BY HASH (ducat_id);
DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF ducat_moves FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
                       'ducat_moves_p' || lpad(i::text, 2, '0'), i);
    END LOOP;
END
$$;
INSERT INTO ducat_moves (ducat_id, seq, ts, sender, receiver, transaction_id)
SELECT u.id, t.seq, t.ts, t.sender, t.receiver, t.transaction_id
FROM transactions AS t CROSS JOIN LATERAL unnest(t.ducat_ids) AS u(id);

-- The ledger's reason for a rejected transaction (NULL while accepted, seq set).
-- Rows rejected before this migration say 'unrecorded'.
ALTER TABLE transaction_ids ADD COLUMN reason text, ADD COLUMN detail text;
UPDATE transaction_ids SET reason = 'unrecorded' WHERE seq IS NULL;

-- Mints the ledger refused because their ducats already exist (a conflict; the
-- record also goes to the dead-letter topic). First refusal wins.
CREATE TABLE mint_rejections (
    mint_id     text PRIMARY KEY,
    reason      text NOT NULL,
    detail      text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now()
);

-- Recent transactions of one holder, either side, newest first, keyset-paged
-- by seq: the by-ts indexes of each side become by-seq ones (nothing read them
-- by ts, and the ledger keeps writing two indexes, not four).
DROP INDEX transactions_sender_idx;
DROP INDEX transactions_receiver_idx;
CREATE INDEX transactions_sender_idx ON transactions (sender, seq DESC);
CREATE INDEX transactions_receiver_idx ON transactions (receiver, seq DESC);

-- A holder's ducats, paged by id: (holder, id) instead of (holder), so a page
-- of the treasury's million ducats is a range scan, not a sort.
DROP INDEX ducats_holder_idx;
CREATE INDEX ducats_holder_idx ON ducats (holder, id);
