-- The consciousness model's state (rules: ducats/domain/consciousness.py),
-- evolved by the ledger in the same transaction as the holder changes.

ALTER TABLE ducats
    ADD COLUMN previous_holder text,                             -- the holder before the current one
    ADD COLUMN impact_sum      double precision NOT NULL DEFAULT 0,  -- 6-digit sums: a real would lose digits
    ADD COLUMN network_hops    integer NOT NULL DEFAULT 0,
    ADD COLUMN stage           smallint NOT NULL DEFAULT 0 CHECK (stage BETWEEN 0 AND 5),
    ADD COLUMN memory_count    smallint NOT NULL DEFAULT 0;     -- its ducat_memories rows: 0 = none to load
-- The ledger's event-time clock: the latest timestamp of any accepted event.
ALTER TABLE ledger_state ADD COLUMN watermark timestamptz;
-- Whom a memory is about (the receiver of its transfer); similar memories aggregate by kind and counterparty.
ALTER TABLE ducat_memories ADD COLUMN counterparty text;

-- Backfill what the transactions already say: each ducat's counters, and the
-- watermark and temperatures. Impacts come from transactions (a real holds the
-- 6-digit impact exactly, and real -> numeric keeps 6 digits). Level, stage
-- and awareness of a ducat that moved before this migration catch up, from
-- these counters, at its next move; its earlier history leaves no memories.
WITH moves AS (
    SELECT u.id, t.seq, t.sender, t.receiver, t.consciousness_impact::numeric AS impact,
           lag(t.sender) OVER (PARTITION BY u.id ORDER BY t.seq) AS before_sender  -- = previous holder then
    FROM transactions AS t CROSS JOIN LATERAL unnest(t.ducat_ids) AS u(id)
), per_ducat AS (
    SELECT id, sum(impact) AS impact_sum,
           count(*) FILTER (WHERE receiver IS DISTINCT FROM before_sender) AS hops,
           (array_agg(sender ORDER BY seq DESC))[1] AS previous_holder
    FROM moves GROUP BY id
)
UPDATE ducats AS d SET impact_sum = p.impact_sum, network_hops = p.hops, previous_holder = p.previous_holder
FROM per_ducat AS p WHERE d.id = p.id;

UPDATE ducats AS d SET memory_count = m.n
FROM (SELECT ducat_id, count(*) AS n FROM ducat_memories GROUP BY ducat_id) AS m WHERE d.id = m.ducat_id;

UPDATE ledger_state SET watermark = (SELECT greatest((SELECT max(ts) FROM transactions), (SELECT max(ts) FROM mints)));
UPDATE ducats SET temperature = CASE WHEN last_transfer_at >= w - INTERVAL '1 hour' THEN 'hot'
                                     ELSE 'warm' END::temperature
FROM (SELECT watermark AS w FROM ledger_state) AS s
WHERE last_transfer_at >= w - INTERVAL '24 hours';

-- Exact counts of ducats per temperature, evolution stage and level decile
-- ('0.0'..'0.9'), kept by the ledger with deltas in each batch's transaction,
-- so that distributions never need a scan of ducats.
CREATE TABLE ducat_census (
    dimension text NOT NULL CHECK (dimension IN ('temperature', 'stage', 'level')),
    bucket    text NOT NULL,
    ducats    bigint NOT NULL CHECK (ducats >= 0),
    PRIMARY KEY (dimension, bucket)
);
WITH buckets (dimension, bucket) AS (
    SELECT 'temperature', t::text FROM unnest(enum_range(NULL::temperature)) AS t
    UNION ALL SELECT 'stage', s::text FROM generate_series(0, 5) AS s
    UNION ALL SELECT 'level', '0.' || k FROM generate_series(0, 9) AS k
), counts (dimension, bucket, n) AS (
    SELECT 'temperature', temperature::text, count(*) FROM ducats GROUP BY 2
    UNION ALL SELECT 'stage', stage::text, count(*) FROM ducats GROUP BY 2
    UNION ALL SELECT 'level', '0.' || least(9, floor(consciousness_level::numeric * 10)), count(*) FROM ducats GROUP BY 2
)
INSERT INTO ducat_census (dimension, bucket, ducats)
SELECT b.dimension, b.bucket, coalesce(c.n, 0)
FROM buckets AS b LEFT JOIN counts AS c USING (dimension, bucket);
