\timing on
BEGIN;
INSERT INTO tx_a SELECT s, 'tx-' || s, '2026-06-01'::timestamptz + (s - 2000000) * interval '100 ms', 'h' || (s % 5000), 'h' || ((s * 7) % 5000),
   ARRAY[(s * 3) % 300000, (s * 3 + 1) % 300000, (s * 3 + 2) % 300000]::bigint[] FROM generate_series(2000001, 2005000) s;
ROLLBACK;
BEGIN;
INSERT INTO tx_b SELECT s, 'tx-' || s, '2026-06-01'::timestamptz + (s - 2000000) * interval '100 ms', 'h' || (s % 5000), 'h' || ((s * 7) % 5000),
   ARRAY[(s * 3) % 300000, (s * 3 + 1) % 300000, (s * 3 + 2) % 300000]::bigint[] FROM generate_series(2000001, 2005000) s;
INSERT INTO moves SELECT u, seq, ts, sender, receiver, transaction_id FROM tx_b, unnest(ducat_ids) u WHERE seq > 2000000;
ROLLBACK;
BEGIN;
INSERT INTO tx_b SELECT s, 'tx-' || s, '2026-06-01'::timestamptz + (s - 2000000) * interval '100 ms', 'h' || (s % 5000), 'h' || ((s * 7) % 5000),
   ARRAY[(s * 3) % 300000, (s * 3 + 1) % 300000, (s * 3 + 2) % 300000]::bigint[] FROM generate_series(2000001, 2005000) s;
ROLLBACK;
