-- Where each consumer group stands on each partition: the next offset to apply, advanced in the
-- same transaction as the effects of the message before it (or after that message went to the
-- dead-letter topic). The broker's committed offsets are only a hint; a consumer that is
-- assigned a partition starts here, so no commit — late, stale, or from a member that died
-- mid-message — can move it past a message whose effects are not committed.
CREATE TABLE consumer_positions (
    consumer    text NOT NULL,               -- the consumer group
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, topic, partition)
);
