-- Metric storage written by the snapshot publisher: one row per day of
-- rollups, and a time series of every snapshot (hypertable or native monthly
-- partitions, like transactions).

CREATE TABLE daily_metrics (
    date       date PRIMARY KEY,
    metrics    jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

DO $$
BEGIN
    IF current_setting('ducats.use_timescale') = 'on' THEN
        CREATE TABLE metric_history (
            ts          timestamptz NOT NULL,
            seq         bigint NOT NULL,
            supply      bigint NOT NULL,
            circulation bigint NOT NULL,
            holders     bigint NOT NULL,
            transfers   bigint NOT NULL,
            moves       bigint NOT NULL,
            velocity_1m double precision NOT NULL,
            velocity_1h double precision NOT NULL,
            velocity_1d double precision NOT NULL,
            snapshot    jsonb NOT NULL
        );
        PERFORM create_hypertable('metric_history', by_range('ts', INTERVAL '1 day'));
    ELSE
        CREATE TABLE metric_history (
            ts          timestamptz NOT NULL,
            seq         bigint NOT NULL,
            supply      bigint NOT NULL,
            circulation bigint NOT NULL,
            holders     bigint NOT NULL,
            transfers   bigint NOT NULL,
            moves       bigint NOT NULL,
            velocity_1m double precision NOT NULL,
            velocity_1h double precision NOT NULL,
            velocity_1d double precision NOT NULL,
            snapshot    jsonb NOT NULL
        ) PARTITION BY RANGE (ts);
        CREATE INDEX metric_history_ts_idx ON metric_history (ts DESC);
    END IF;
END
$$;

-- Native storage: monthly partitions of any RANGE(ts)-partitioned table.
CREATE FUNCTION ducats_ensure_month_partition_of(parent text, month date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lo date := date_trunc('month', month)::date;
    hi date := (date_trunc('month', month) + INTERVAL '1 month')::date;
    name text := format('%s_y%sm%s', parent, to_char(lo, 'YYYY'), to_char(lo, 'MM'));
BEGIN
    IF (SELECT value FROM ducats_meta WHERE key = 'storage') = 'native' AND to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', name, parent, lo, hi);
    END IF;
END
$$;
