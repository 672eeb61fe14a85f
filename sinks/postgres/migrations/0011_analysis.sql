-- Network intelligence (docs/network.md, "Analysis"): one row per run of
-- `ducats analyze`, with what it computed, and the newest run's community of
-- each holder (what the next run matches its communities against).
CREATE TABLE analysis_runs (
    id                bigserial PRIMARY KEY,
    computed_at       timestamptz NOT NULL,
    seq               bigint NOT NULL,             -- the highest seq the edges held (per partition: result->'positions')
    ms                double precision NOT NULL,   -- the computation's time, loading the edges included
    nodes             bigint NOT NULL,
    edges             bigint NOT NULL,
    components        bigint NOT NULL,
    largest_component bigint NOT NULL,
    communities       bigint NOT NULL,
    result            jsonb NOT NULL
);
CREATE INDEX analysis_runs_computed_at_idx ON analysis_runs (computed_at DESC);

CREATE TABLE community_members (
    holder    text PRIMARY KEY,
    community bigint NOT NULL
);
