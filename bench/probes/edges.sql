-- Probe for issue 10's edges table (docs/edges.md): holder-to-holder edges,
-- LIST-partitioned by the sender's region, kept by upserts of one ledger batch's
-- aggregated pairs, against a raw COPY-like INSERT of the same rows into an
-- unindexed table. 3,900 holders in 4 regions (plus the default partition),
-- 40 batches of 5,000 aggregated pairs each (random pairs: most are new).
--   psql -f bench/probes/edges.sql     (a scratch schema; dropped at the end)
\timing on
SET jit = off;
DROP SCHEMA IF EXISTS probe_edges CASCADE;
CREATE SCHEMA probe_edges;
SET search_path = probe_edges;
CREATE TABLE edges (
    region      text   NOT NULL,
    sender      text   NOT NULL,
    receiver    text   NOT NULL,
    weight      bigint NOT NULL,
    transfers   bigint NOT NULL,
    first_seq   bigint NOT NULL,
    last_seq    bigint NOT NULL,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    PRIMARY KEY (region, sender, receiver)
) PARTITION BY LIST (region);
CREATE TABLE edges_eu PARTITION OF edges FOR VALUES IN ('eu');
CREATE TABLE edges_us PARTITION OF edges FOR VALUES IN ('us');
CREATE TABLE edges_asia PARTITION OF edges FOR VALUES IN ('asia');
CREATE TABLE edges_latam PARTITION OF edges FOR VALUES IN ('latam');
CREATE TABLE edges_default PARTITION OF edges DEFAULT;
CREATE UNLOGGED TABLE floor (LIKE edges);
CREATE TABLE batches AS
  SELECT b, (ARRAY['eu','us','asia','latam','mars'])[1 + (s % 5)] AS region,
         'h' || lpad(s::text, 4, '0') AS sender, 'h' || lpad(r::text, 4, '0') AS receiver,
         (1 + (random() * 9)::int)::bigint AS weight, b * 5000 + k AS seq
  FROM (SELECT b, k, (random() * 3899)::int AS s, (random() * 3899)::int AS r
        FROM generate_series(1, 40) AS b, generate_series(1, 5000) AS k) AS p
  WHERE s <> r;
CREATE INDEX ON batches (b);
ANALYZE batches;
-- the floor: plain INSERT of the same rows, no index, no conflict handling
SELECT 'floor' AS run, count(*) FROM batches;
DO $$
DECLARE t0 timestamptz := clock_timestamp(); n bigint;
BEGIN
  FOR i IN 1..40 LOOP
    INSERT INTO floor SELECT region, sender, receiver, sum(weight), count(*), min(seq), max(seq), now(), now()
      FROM batches WHERE b = i GROUP BY 1, 2, 3;
  END LOOP;
  SELECT count(*) INTO n FROM floor;
  RAISE NOTICE 'floor: % rows in % ms', n, round(extract(epoch FROM clock_timestamp() - t0) * 1000);
END $$;
-- one ledger batch's pairs, aggregated, upserted; idempotent by seq (a replayed batch changes nothing)
CREATE FUNCTION upsert_batch(i int) RETURNS void LANGUAGE sql AS $$
  INSERT INTO edges AS e SELECT region, sender, receiver, sum(weight), count(*), min(seq), max(seq), now(), now()
    FROM batches WHERE b = i GROUP BY 1, 2, 3
    ON CONFLICT (region, sender, receiver) DO UPDATE
      SET weight = e.weight + excluded.weight, transfers = e.transfers + excluded.transfers,
          last_seq = excluded.last_seq, last_at = excluded.last_at
      WHERE e.last_seq < excluded.first_seq
$$;
-- the candidate: upsert per batch, idempotent by seq (a replayed batch changes nothing)
DO $$
DECLARE t0 timestamptz := clock_timestamp(); n bigint;
BEGIN
  FOR i IN 1..40 LOOP
    PERFORM upsert_batch(i);
  END LOOP;
  SELECT count(*) INTO n FROM edges;
  RAISE NOTICE 'upsert: % edges in % ms', n, round(extract(epoch FROM clock_timestamp() - t0) * 1000);
END $$;
-- a replay of the last 10 batches: no row changes
DO $$
DECLARE t0 timestamptz := clock_timestamp(); w bigint; w2 bigint;
BEGIN
  SELECT sum(weight) INTO w FROM edges;
  FOR i IN 31..40 LOOP
    PERFORM upsert_batch(i);
  END LOOP;
  SELECT sum(weight) INTO w2 FROM edges;
  RAISE NOTICE 'replay: weight % -> % in % ms', w, w2, round(extract(epoch FROM clock_timestamp() - t0) * 1000);
END $$;
SELECT tableoid::regclass AS partition, count(*) FROM edges GROUP BY 1 ORDER BY 1;
DROP SCHEMA probe_edges CASCADE;
