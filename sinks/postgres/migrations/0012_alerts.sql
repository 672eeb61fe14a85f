-- Cascade alerts with human oversight (docs/network.md, "Cascades").
--
-- alerts: one row per alert, its newest state: the detector's (open, ended) and a
-- human's acknowledgement. alert_audit: every state change, append-only (a trigger
-- refuses UPDATE and DELETE). cascade_checkpoint: where `ducats cascades` is in the
-- accepted log and its detector's state, written in the same transaction as the
-- alerts it raised, so a restart neither loses nor repeats one.

CREATE TABLE alerts (
    alert_id    text PRIMARY KEY,
    kind        text NOT NULL,
    state       text NOT NULL CHECK (state IN ('open', 'ended')),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    start_seq   bigint NOT NULL,
    end_seq     bigint,
    record      jsonb NOT NULL,          -- the newest Alert v1 record (schemas/alert.v1.json)
    version     integer NOT NULL DEFAULT 1,       -- one more per state the detector writes
    published   integer NOT NULL DEFAULT 0,       -- the version on the topic and in Redis
    acked_by    text,                             -- who acknowledged it (as they said)
    acked_key   text,                             -- with which API key (its id)
    acked_at    timestamptz,
    ack_note    text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_open_idx ON alerts (started_at DESC) WHERE state = 'open';
CREATE INDEX alerts_started_idx ON alerts (started_at DESC);

CREATE TABLE alert_audit (
    id        bigserial PRIMARY KEY,
    alert_id  text NOT NULL REFERENCES alerts (alert_id),
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,             -- 'detector', or who acknowledged it (and key_id)
    key_id    text,
    action    text NOT NULL CHECK (action IN ('opened', 'ended', 'acknowledged')),
    note      text,
    record    jsonb NOT NULL
);
CREATE INDEX alert_audit_alert_idx ON alert_audit (alert_id, id);

CREATE FUNCTION ducats_alert_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'alert_audit is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER alert_audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON alert_audit
    FOR EACH STATEMENT EXECUTE FUNCTION ducats_alert_audit_append_only();

CREATE TABLE cascade_checkpoint (
    id        integer PRIMARY KEY CHECK (id = 1),
    offsets   jsonb NOT NULL,            -- batches-topic partition -> the offset to read on from
    detector  jsonb NOT NULL             -- ducats.domain.cascade.Detector.to_dict()
);
