-- How many ducats each holder has, kept by the ledger in the same transaction
-- as the holder changes. Accepted events carry the balances after the event,
-- so downstream can count holders (balance > 0) without per-ducat state.
CREATE TABLE holder_balances (
    holder text PRIMARY KEY,
    ducats bigint NOT NULL CHECK (ducats >= 0)
);
INSERT INTO holder_balances (holder, ducats)
SELECT holder, count(*) FROM ducats GROUP BY holder;
CREATE INDEX holder_balances_positive_idx ON holder_balances (holder) WHERE ducats > 0;
