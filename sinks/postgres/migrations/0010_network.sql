-- The holder network (docs/network.md): the holder registry, the edges between
-- holders LIST-partitioned by the sender's region, and per partition of the
-- accepted topic the seq its transfers are in the edges up to. Written by the
-- worker's edges sink (sinks/postgres/edges.py), idempotent by seq.

-- A holder's region: what its first transfer as a sender states (metadata.fromRegion),
-- else, for a holder that has only received, what the first transfer to it states
-- (toRegion). as_sender says which; seq and at are that transfer's.
CREATE TABLE holders (
    holder     text PRIMARY KEY,
    region     text NOT NULL,
    as_sender  boolean NOT NULL,
    seq        bigint NOT NULL,
    at         timestamptz NOT NULL
);

CREATE TABLE edges (
    region     text   NOT NULL,
    sender     text   NOT NULL,
    receiver   text   NOT NULL,
    weight     bigint NOT NULL,
    transfers  bigint NOT NULL,
    first_seq  bigint NOT NULL,
    last_seq   bigint NOT NULL,
    first_at   timestamptz NOT NULL,
    last_at    timestamptz NOT NULL,
    source     integer NOT NULL,   -- the accepted topic's partition its transfers are in (its sender's)
    PRIMARY KEY (region, sender, receiver)
) PARTITION BY LIST (region);
-- What changed after a seq, per source partition: the Neo4j mirror's incremental read.
CREATE INDEX edges_last_seq_idx ON edges (last_seq);
CREATE TABLE edges_eu PARTITION OF edges FOR VALUES IN ('eu');
CREATE TABLE edges_na PARTITION OF edges FOR VALUES IN ('na');
CREATE TABLE edges_latam PARTITION OF edges FOR VALUES IN ('latam');
CREATE TABLE edges_apac PARTITION OF edges FOR VALUES IN ('apac');
CREATE TABLE edges_africa PARTITION OF edges FOR VALUES IN ('africa');
CREATE TABLE edges_default PARTITION OF edges DEFAULT;

CREATE TABLE edge_positions (
    partition integer PRIMARY KEY,
    seq       bigint  NOT NULL
);
