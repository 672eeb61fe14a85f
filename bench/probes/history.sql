-- The history index probe (BENCHMARKS.md, "The history index"): 1M transactions of 3 ducats
-- over 300k ducats in 6 monthly partitions, as candidate A (GIN on ducat_ids) and B (ducat_moves).
\timing off
DROP TABLE IF EXISTS tx_a, tx_b, moves CASCADE;
-- candidate A: GIN on the array of ducat ids
CREATE TABLE tx_a (seq bigint, transaction_id text, ts timestamptz, sender text, receiver text, ducat_ids bigint[]) PARTITION BY RANGE (ts);
-- candidate B: the same transactions, plus one row per (ducat, seq)
CREATE TABLE tx_b (seq bigint, transaction_id text, ts timestamptz, sender text, receiver text, ducat_ids bigint[]) PARTITION BY RANGE (ts);
CREATE TABLE moves (ducat_id bigint, seq bigint, ts timestamptz, sender text, receiver text, transaction_id text,
                    PRIMARY KEY (ducat_id, seq)) PARTITION BY HASH (ducat_id);
DO $$ BEGIN
  FOR m IN 0..5 LOOP
    EXECUTE format('CREATE TABLE tx_a_%s PARTITION OF tx_a FOR VALUES FROM (%L) TO (%L)', m, '2026-01-01'::date + m * interval '1 month', '2026-01-01'::date + (m+1) * interval '1 month');
    EXECUTE format('CREATE TABLE tx_b_%s PARTITION OF tx_b FOR VALUES FROM (%L) TO (%L)', m, '2026-01-01'::date + m * interval '1 month', '2026-01-01'::date + (m+1) * interval '1 month');
  END LOOP;
  FOR i IN 0..15 LOOP
    EXECUTE format('CREATE TABLE moves_%s PARTITION OF moves FOR VALUES WITH (MODULUS 16, REMAINDER %s)', i, i);
  END LOOP;
END $$;
CREATE INDEX ON tx_a (seq); CREATE INDEX ON tx_b (seq);
CREATE INDEX ON tx_a USING gin (ducat_ids);
-- 1M transactions of 3 ducats each over 300k ducats, spread over 6 months
INSERT INTO tx_a SELECT s, 'tx-' || s, '2026-01-01'::timestamptz + s * interval '15 seconds', 'h' || (s % 5000), 'h' || ((s * 7) % 5000),
   ARRAY[(s * 3) % 300000, (s * 3 + 1) % 300000, (s * 3 + 2) % 300000]::bigint[] FROM generate_series(1, 1000000) s;
INSERT INTO tx_b SELECT * FROM tx_a;
INSERT INTO moves SELECT u, seq, ts, sender, receiver, transaction_id FROM tx_b, unnest(ducat_ids) u;
VACUUM ANALYZE tx_a; VACUUM ANALYZE tx_b; VACUUM ANALYZE moves;
SELECT pg_size_pretty(pg_total_relation_size('tx_a')) AS a_total,
       (SELECT pg_size_pretty(sum(pg_relation_size(i.indexrelid))) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE 'tx_a_%ducat_ids%') AS a_gin,
       pg_size_pretty(pg_total_relation_size('tx_b')) AS b_tx,
       (SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c WHERE c.relname ~ '^moves_[0-9]+$') AS b_moves;
