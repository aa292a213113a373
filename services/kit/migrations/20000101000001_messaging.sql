-- The kit's messaging tables, merged into the migrations of every service that publishes or
-- consumes events (kommerce_kit::messaging::MIGRATOR).

-- Transactional outbox: an event is a row written in the same transaction as the state change
-- that caused it; the relay sends pending rows to Kafka and marks them sent.
CREATE TABLE outbox (
    id          uuid PRIMARY KEY,            -- the event id (envelope id)
    topic       text NOT NULL,
    key         text NOT NULL,               -- Kafka message key: the saga / aggregate key
    event_type  text NOT NULL,
    envelope    jsonb NOT NULL,              -- the whole envelope, sent as the message value
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at     timestamptz,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text
);

CREATE INDEX outbox_pending_idx ON outbox (created_at) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Inbox: one row per event a consumer has applied, written in the same transaction as the
-- consumer's effects; a redelivered event finds its row and is skipped.
CREATE TABLE inbox (
    consumer     text NOT NULL,              -- the consumer group
    event_id     uuid NOT NULL,
    event_type   text NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
