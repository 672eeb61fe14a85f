-- The ledger: ducats, mints, transactions, memories, and the sink's own
-- bookkeeping (input offsets, ledger position, outbox).
-- The runner sets ducats.use_timescale to 'on' or 'off' for this transaction.

CREATE TYPE temperature AS ENUM ('cold', 'warm', 'hot');

-- One row per ducat. id = batch * 1_000_000 + seq, the text form is
-- BATCH-<batch>-<seq, 6 digits>: a bigint key is half the size of the text
-- and joins faster; the API converts at the edge.
CREATE TABLE ducats (
    id                  bigint PRIMARY KEY,
    batch               integer NOT NULL,
    holder              text NOT NULL,
    mint_id             text NOT NULL,
    minted_at           timestamptz NOT NULL,
    transfer_count      integer NOT NULL DEFAULT 0,
    last_tx_seq         bigint,
    last_transfer_at    timestamptz,
    consciousness_level real NOT NULL DEFAULT 0 CHECK (consciousness_level BETWEEN 0 AND 1),
    temperature         temperature NOT NULL DEFAULT 'cold',
    consciousness       jsonb            -- NULL until the ducat first evolves
);
CREATE INDEX ducats_holder_idx ON ducats (holder);
CREATE INDEX ducats_batch_idx ON ducats (batch);
-- "Active" ducats: the ones that are not cold. Small, so the hot queries stay cheap.
CREATE INDEX ducats_active_idx ON ducats (last_transfer_at DESC) WHERE temperature <> 'cold';

CREATE TABLE mints (
    mint_id     text PRIMARY KEY,
    seq         bigint NOT NULL UNIQUE,
    batch       integer NOT NULL,
    first_seq   integer NOT NULL,
    count       integer NOT NULL,
    holder      text NOT NULL,
    ts          timestamptz NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- Every transaction id the ledger has seen, accepted (seq set) or rejected
-- (seq NULL). The partitioned transactions table cannot carry a unique index
-- without its partition key, so idempotency lives here.
CREATE TABLE transaction_ids (
    transaction_id text PRIMARY KEY,
    seq            bigint,
    ts             timestamptz NOT NULL
);

DO $$
BEGIN
    IF current_setting('ducats.use_timescale') = 'on' THEN
        CREATE TABLE transactions (
            seq                  bigint NOT NULL,
            transaction_id       text NOT NULL,
            ts                   timestamptz NOT NULL,
            sender               text NOT NULL,
            receiver             text NOT NULL,
            ducat_ids            bigint[] NOT NULL,
            ducat_count          integer NOT NULL,
            consciousness_impact real NOT NULL,
            metadata             jsonb NOT NULL DEFAULT '{}',
            applied_at           timestamptz NOT NULL DEFAULT now()
        );
        PERFORM create_hypertable('transactions', by_range('ts', INTERVAL '1 month'));
    ELSE
        CREATE TABLE transactions (
            seq                  bigint NOT NULL,
            transaction_id       text NOT NULL,
            ts                   timestamptz NOT NULL,
            sender               text NOT NULL,
            receiver             text NOT NULL,
            ducat_ids            bigint[] NOT NULL,
            ducat_count          integer NOT NULL,
            consciousness_impact real NOT NULL,
            metadata             jsonb NOT NULL DEFAULT '{}',
            applied_at           timestamptz NOT NULL DEFAULT now()
        ) PARTITION BY RANGE (ts);
        CREATE INDEX transactions_ts_idx ON transactions (ts DESC);
    END IF;
END
$$;
CREATE INDEX transactions_seq_idx ON transactions (seq);
CREATE INDEX transactions_sender_idx ON transactions (sender, ts DESC);
CREATE INDEX transactions_receiver_idx ON transactions (receiver, ts DESC);

-- Native path: one partition per calendar month, created ahead of need by
-- `ducats migrate` and by the ledger sink before it writes a new month.
CREATE FUNCTION ducats_ensure_month_partition(month date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lo date := date_trunc('month', month)::date;
    hi date := (date_trunc('month', month) + INTERVAL '1 month')::date;
    name text := format('transactions_y%sm%s', to_char(lo, 'YYYY'), to_char(lo, 'MM'));
BEGIN
    IF to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF transactions FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
    END IF;
END
$$;

-- Memories: spread over 16 hash partitions of the ducat id.
CREATE TABLE ducat_memories (
    ducat_id     bigint NOT NULL,
    memory_id    bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    kind         text NOT NULL,
    memory       text NOT NULL,
    significance real NOT NULL,
    occurrences  integer NOT NULL DEFAULT 1,
    compressed   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (ducat_id, memory_id)
) PARTITION BY HASH (ducat_id);
DO $$
BEGIN
    FOR i IN 0..15 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF ducat_memories FOR VALUES WITH (MODULUS 16, REMAINDER %s)',
                       'ducat_memories_p' || lpad(i::text, 2, '0'), i);
    END LOOP;
END
$$;

-- The sink's bookkeeping, written in the same transaction as the data.
CREATE TABLE ledger_offsets (          -- next Kafka offset to read, per input partition
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE ledger_state (            -- the ledger position: last seq assigned
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_seq bigint NOT NULL
);
INSERT INTO ledger_state (last_seq) VALUES (0);
CREATE TABLE outbox (                  -- records to publish after commit, in id order
    id    bigserial PRIMARY KEY,
    topic text NOT NULL,
    key   bytea,
    value bytea NOT NULL
);

CREATE TABLE ducats_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO ducats_meta VALUES ('storage', CASE current_setting('ducats.use_timescale')
                                           WHEN 'on' THEN 'timescale' ELSE 'native' END);
